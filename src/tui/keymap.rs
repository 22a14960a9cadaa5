//! Every key of the workbench, in one table: the handlers dispatch from it ([`command`]), and the
//! help overlay, the footers, the setup screen's key line and the README's key table are drawn
//! from it, so what a key does and what the screen says it does cannot drift apart.
//! `tests` below fails when a handler answers a key the table does not hold.

use super::keys::Key;

/// Where a key is read: a screen, the part of it that has the focus, or a box over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Before any screen: Ctrl-C.
    Anywhere,
    /// The setup screen's checkpoint browser.
    Browser,
    /// The setup screen's strategy form.
    Form,
    Inspector,
    Dashboard,
    /// `tui --attach` on a training directory.
    TrainingViewer,
    /// The "stop the job?" box.
    ConfirmStop,
    /// The box where the save destination is typed.
    SavePrompt,
    Help,
}

impl Context {
    pub const ALL: [Context; 9] = [
        Context::Anywhere,
        Context::Browser,
        Context::Form,
        Context::Inspector,
        Context::Dashboard,
        Context::TrainingViewer,
        Context::ConfirmStop,
        Context::SavePrompt,
        Context::Help,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Context::Anywhere => "any",
            Context::Browser => "setup",
            Context::Form => "form",
            Context::Inspector => "inspector",
            Context::Dashboard => "dashboard",
            Context::TrainingViewer => "training viewer",
            Context::ConfirmStop => "stop?",
            Context::SavePrompt => "save",
            Context::Help => "help",
        }
    }
}

/// What the workbench is doing, as far as keys care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Situation {
    /// A job runs (here, or in the process followed).
    pub running: bool,
    /// Following a run another process writes (`tui --attach`).
    pub attached: bool,
    /// The session has a setup screen to go back to.
    pub setup: bool,
}

/// When a binding holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// A job of this session runs.
    Running,
    /// This session's job is done (or none ran).
    Done,
    /// Done, with a setup screen to go back to.
    DoneWithSetup,
    /// Done, without one.
    DoneWithoutSetup,
    Attached,
}

impl When {
    pub fn holds(self, s: &Situation) -> bool {
        let own = !s.attached;
        match self {
            When::Always => true,
            When::Running => own && s.running,
            When::Done => own && !s.running,
            When::DoneWithSetup => own && !s.running && s.setup,
            When::DoneWithoutSetup => own && !s.running && !s.setup,
            When::Attached => s.attached,
        }
    }

    fn describe(self) -> Option<&'static str> {
        match self {
            When::Always => None,
            When::Running => Some("while a job runs"),
            When::Done => Some("when the job is done"),
            When::DoneWithSetup => Some("when done"),
            When::DoneWithoutSetup => Some("when done, without a setup screen"),
            When::Attached => Some("`--attach`"),
        }
    }
}

/// Which keys a binding answers.
#[derive(Debug, Clone, Copy)]
pub enum Keys {
    Of(&'static [Key]),
    /// Any printable character (typing into a field).
    Typing,
    /// Any key at all.
    Any,
}

impl Keys {
    fn matches(self, key: Key) -> bool {
        match self {
            Keys::Of(keys) => keys.contains(&key),
            Keys::Typing => matches!(key, Key::Char(c) if !c.is_control()),
            Keys::Any => true,
        }
    }
}

/// What a key asks for; the handler of its context carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Ctrl-C: ask to stop a running job (a second one stops it), else quit.
    Interrupt,
    Quit,
    Help,
    /// Up or down a list (which one: [`Key::vertical`]).
    Move,
    // the browser
    Parent,
    /// Open the directory under the cursor, or select / unselect the checkpoint there.
    Activate,
    OpenDir,
    /// Select / unselect the checkpoint under the cursor and move down.
    Toggle,
    SelectAll,
    Inspect,
    Start,
    /// Between the browser and the form.
    SwitchFocus,
    /// Leave the setup screen for the dashboard, when there is something to see.
    Back,
    // the form
    /// The previous or next field (up / down).
    Field,
    /// The previous or next choice (left / right).
    Choose,
    Erase,
    Type,
    /// `q` in the form: quit from a choice field, typed elsewhere.
    QuitOrType,
    // the inspector
    ToggleMatrix,
    // the dashboard
    AskStop,
    ToSetup,
    NewRun,
    Save,
    /// The previous (`[`) or next (`]`) run.
    SelectRun,
    NextPanel,
    ToggleWindow,
    // the boxes
    Confirm,
    Dismiss,
}

/// One row of the table: in `context`, when `when` holds, `keys` do `command`. `label` names the
/// keys on screen, `short` is the footer's word for it (None: not in the footer), `help` the
/// help overlay's and the README's.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub context: Context,
    pub when: When,
    pub keys: Keys,
    pub command: Command,
    pub label: &'static str,
    pub short: Option<&'static str>,
    pub help: &'static str,
}

const fn bind(
    context: Context,
    when: When,
    keys: Keys,
    command: Command,
    label: &'static str,
    short: Option<&'static str>,
    help: &'static str,
) -> Binding {
    Binding { context, when, keys, command, label, short, help }
}

use Command as C;
use Context::*;
use Key::*;
use When::*;

/// The workbench's keys. Order matters twice: the first binding that holds answers a key, and
/// footers list bindings in this order.
#[rustfmt::skip] // a table: one binding a row, its help text on the row's second line
pub const BINDINGS: &[Binding] = &[
    bind(Anywhere, Always, Keys::Of(&[Interrupt]), C::Interrupt, "Ctrl-C", None,
        "as q from any screen, also while typing in the form; a second one confirms the stop"),
    // setup: the checkpoint browser
    bind(Browser, Always, Keys::Of(&[Char('j'), Char('k'), Down, Up]), C::Move, "j/k", Some("move"),
        "move (also the arrow keys)"),
    bind(Browser, Always, Keys::Of(&[Char(' ')]), C::Toggle, "space", Some("select"),
        "select / unselect the checkpoint (refused with the reason when it does not fit)"),
    bind(Browser, Always, Keys::Of(&[Char('a')]), C::SelectAll, "a", Some("all/none"),
        "select every ingredient here that fits / unselect all"),
    bind(Browser, Always, Keys::Of(&[Enter]), C::Activate, "Enter", Some("open"),
        "open a directory, or select / unselect a checkpoint"),
    bind(Browser, Always, Keys::Of(&[Char('l'), Right]), C::OpenDir, "l/right", None,
        "open a directory"),
    bind(Browser, Always, Keys::Of(&[Backspace, Char('h'), Left]), C::Parent, "Bksp/h", Some("up"),
        "go up a directory"),
    bind(Browser, Always, Keys::Of(&[Char('i')]), C::Inspect, "i", Some("inspect"),
        "inspect the selected ingredients"),
    bind(Browser, Always, Keys::Of(&[Char('s')]), C::Start, "s", Some("start"),
        "start"),
    bind(Browser, Always, Keys::Of(&[Tab]), C::SwitchFocus, "Tab", Some("form"),
        "to the form and back"),
    bind(Browser, Always, Keys::Of(&[Esc]), C::Back, "Esc", None,
        "back to the dashboard, when a job ran or runs"),
    bind(Browser, Always, Keys::Of(&[Char('q')]), C::Quit, "q", Some("quit"),
        "quit (asks first while a job runs)"),
    bind(Browser, Always, Keys::Of(&[Char('?')]), C::Help, "?", Some("help"),
        "help (shows the run directory and the log file)"),
    // setup: the strategy form
    bind(Form, Always, Keys::Of(&[Up, Down]), C::Field, "up/down", Some("field"),
        "the previous / next field"),
    bind(Form, Always, Keys::Of(&[Left, Right]), C::Choose, "left/right", Some("choose"),
        "the previous / next choice of a choice field"),
    bind(Form, Always, Keys::Of(&[Enter]), C::Start, "Enter", Some("start"),
        "start"),
    bind(Form, Always, Keys::Of(&[Tab, Esc]), C::SwitchFocus, "Tab/Esc", Some("browser"),
        "back to the browser"),
    bind(Form, Always, Keys::Of(&[Backspace]), C::Erase, "Bksp", None,
        "erase the last character of a value"),
    bind(Form, Always, Keys::Of(&[Char('q')]), C::QuitOrType, "q", None,
        "quit, on a choice field (typed into a text field)"),
    bind(Form, Always, Keys::Typing, C::Type, "typing", Some("edit"),
        "edit the value (numbers take digits and . e - +)"),
    // the inspector
    bind(Inspector, Always, Keys::Of(&[Char('m')]), C::ToggleMatrix, "m", Some("cosine/distance"),
        "cosine or distance matrix"),
    bind(Inspector, Always, Keys::Of(&[Char('j'), Char('k'), Down, Up]), C::Move, "j/k", Some("scroll tensors"),
        "scroll the tensors (also the arrow keys)"),
    bind(Inspector, Always, Keys::Of(&[Esc, Char('q'), Char('i')]), C::Back, "Esc", Some("back"),
        "back to the setup screen (also q, i)"),
    bind(Inspector, Always, Keys::Of(&[Char('?')]), C::Help, "?", Some("help"),
        "help"),
    // the dashboard
    bind(Dashboard, Attached, Keys::Of(&[Char('q'), Esc]), C::Quit, "q", Some("close the viewer (the run goes on)"),
        "close the viewer: the run goes on in its own process (also Esc)"),
    bind(Dashboard, Running, Keys::Of(&[Char('q')]), C::AskStop, "q", Some("stop"),
        "stop the running job (asks first; the best soup so far is kept)"),
    bind(Dashboard, DoneWithoutSetup, Keys::Of(&[Char('q'), Esc]), C::Quit, "q/Esc", Some("quit"),
        "quit"),
    bind(Dashboard, DoneWithSetup, Keys::Of(&[Char('n')]), C::NewRun, "n", Some("new run"),
        "new run: back to the setup screen"),
    bind(Dashboard, Running, Keys::Of(&[Char('n')]), C::NewRun, "n", None,
        "says to stop the running job first"),
    bind(Dashboard, DoneWithSetup, Keys::Of(&[Esc]), C::ToSetup, "Esc", None,
        "back to the setup screen"),
    bind(Dashboard, Always, Keys::Of(&[Char('['), Char(']')]), C::SelectRun, "[ ]", Some("run"),
        "select the previous / next run: every panel follows"),
    bind(Dashboard, Always, Keys::Of(&[Char('s')]), C::Save, "s", Some("save"),
        "save the selected run's soup and report"),
    bind(Dashboard, Always, Keys::Of(&[Tab]), C::NextPanel, "Tab", Some("panel"),
        "next panel"),
    bind(Dashboard, Always, Keys::Of(&[Char('j'), Char('k'), Down, Up]), C::Move, "j/k", Some("scroll"),
        "scroll the focused panel (weights, log) or select the run (results, curves, progress)"),
    bind(Dashboard, Always, Keys::Of(&[Char('w')]), C::ToggleWindow, "w", Some("window"),
        "curves: recent 50 epochs or whole run"),
    bind(Dashboard, DoneWithSetup, Keys::Of(&[Char('q')]), C::Quit, "q", Some("quit"),
        "quit"),
    bind(Dashboard, Always, Keys::Of(&[Char('?')]), C::Help, "?", Some("help"),
        "help (shows the run directory and the log file)"),
    // the training viewer
    bind(TrainingViewer, Always, Keys::Of(&[Char('q'), Esc]), C::Quit, "q/Esc", Some("close"),
        "close the viewer: the training goes on"),
    // the boxes over a screen
    bind(ConfirmStop, Always, Keys::Of(&[Char('y'), Char('Y'), Enter]), C::Confirm, "y/Enter", None,
        "stop the job (quit, if it ended meanwhile)"),
    bind(ConfirmStop, Always, Keys::Any, C::Dismiss, "any other", None,
        "keep it running"),
    bind(SavePrompt, Always, Keys::Of(&[Enter]), C::Confirm, "Enter", None,
        "save into the directory typed (existing files are never replaced)"),
    bind(SavePrompt, Always, Keys::Of(&[Esc]), C::Dismiss, "Esc", None,
        "cancel"),
    bind(SavePrompt, Always, Keys::Of(&[Backspace]), C::Erase, "Bksp", None,
        "erase"),
    bind(SavePrompt, Always, Keys::Typing, C::Type, "typing", None,
        "the directory"),
    bind(Help, Always, Keys::Any, C::Dismiss, "any", None,
        "close the help"),
];

/// The command `key` gives in `context`, if any.
pub fn command(context: Context, key: Key, s: &Situation) -> Option<Command> {
    BINDINGS
        .iter()
        .find(|b| b.context == context && b.when.holds(s) && b.keys.matches(key))
        .map(|b| b.command)
}

/// The key line of a screen: each binding that holds and has a footer word, in table order.
pub fn footer(context: Context, s: &Situation) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for b in BINDINGS.iter().filter(|b| b.context == context && b.when.holds(s)) {
        if let Some(short) = b.short.filter(|_| !seen.contains(&b.label)) {
            seen.push(b.label);
            parts.push(format!("{} {short}", b.label));
        }
    }
    parts.join("  ")
}

/// The keys that give `command` in `context`, as the screen names them ("?" when none do).
pub fn label_of(context: Context, command: Command) -> &'static str {
    BINDINGS.iter().find(|b| b.context == context && b.command == command).map_or("?", |b| b.label)
}

/// The help overlay's lines for the contexts of the screen shown.
pub fn help_lines(contexts: &[Context], s: &Situation) -> Vec<String> {
    let mut lines = Vec::new();
    for &context in contexts.iter().chain([&Anywhere]) {
        let rows: Vec<_> =
            BINDINGS.iter().filter(|b| b.context == context && b.when.holds(s)).collect();
        if rows.is_empty() {
            continue;
        }
        if context != Anywhere {
            lines.push(format!("{}:", context.name()));
        }
        lines.extend(rows.iter().map(|b| format!("{:<8} {}", b.label, b.help)));
    }
    lines
}

/// The README's key table (compared with the README by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| screen | key | action |\n|---|---|---|\n");
    for b in BINDINGS {
        let screen = match b.when.describe() {
            Some(w) => format!("{}, {w}", b.context.name()),
            None => b.context.name().to_string(),
        };
        let label = b.label.replace('|', "\\|");
        out.push_str(&format!("| {screen} | `{label}` | {} |\n", b.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situations() -> Vec<Situation> {
        let mut all = Vec::new();
        for running in [false, true] {
            for attached in [false, true] {
                for setup in [false, true] {
                    all.push(Situation { running, attached, setup });
                }
            }
        }
        all
    }

    #[test]
    fn every_key_has_at_most_one_meaning_and_every_binding_is_reachable() {
        for b in BINDINGS {
            let keys: Vec<Key> = match b.keys {
                Keys::Of(k) => k.to_vec(),
                _ => continue,
            };
            let reachable = situations().iter().any(|s| {
                b.when.holds(s)
                    && keys.iter().any(|&k| {
                        BINDINGS
                            .iter()
                            .find(|o| {
                                o.context == b.context && o.when.holds(s) && o.keys.matches(k)
                            })
                            .is_some_and(|o| std::ptr::eq(o, b))
                    })
            });
            assert!(reachable, "{b:?} is shadowed by an earlier binding in every situation");
        }
    }

    #[test]
    fn the_readme_key_table_is_the_keymap() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's key table differs from src/tui/keymap.rs; replace it with:\n\n{table}"
        );
    }

    #[test]
    fn footers_say_what_the_keys_do() {
        let running = Situation { running: true, attached: false, setup: true };
        assert_eq!(
            footer(Dashboard, &running),
            "q stop  [ ] run  s save  Tab panel  j/k scroll  w window  ? help"
        );
        let done = Situation { running: false, ..running };
        assert_eq!(
            footer(Dashboard, &done),
            "n new run  [ ] run  s save  Tab panel  j/k scroll  w window  q quit  ? help"
        );
        let attached = Situation { attached: true, ..running };
        assert!(footer(Dashboard, &attached).starts_with("q close the viewer (the run goes on)"));
    }
}
