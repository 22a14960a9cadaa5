//! `gnn-soup slurm train`: a training run split over a Slurm array job. Slurm does the
//! scheduling; gnn-soup only writes what it runs: the shared init first (`train --init-only`, so
//! every task checks against one file), an array of `train --shard $SLURM_ARRAY_TASK_ID/N` tasks
//! into one shared directory, and a job that starts when all of them succeeded
//! (`--dependency=afterok`) and runs `train --collect` (and a soup).
//!
//! Every value given on the command line that a script holds (paths, the training and soup
//! arguments, the `#SBATCH` options) goes through [`shell_quote`], and nothing else is spliced in
//! but numbers and fixed text. What a place cannot hold, whatever the quoting, is refused by
//! [`check`], naming the option, before anything is written: a line break in an `#SBATCH` line or
//! a comment would end the line, and the rest would run as a command.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;

use super::args::{Cli, Command, SlurmTrainArgs};

/// `text` as one word for bash: the whole value in single quotes, each `'` in it written `'\''`.
/// Inside single quotes bash expands nothing (`$`, backticks, `\`, `;`, `*`, a newline are all
/// literal). sbatch reads an `#SBATCH` line's quotes the same way (its own parser, since Slurm
/// 2.1: quotes group, `\` escapes the next character, so `'\''` is a `'`), which is why this one
/// function also quotes the `#SBATCH` values; [`check`] refuses the backslashes it would drop.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where a value goes in a generated script, and so what it may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    /// An argument of a command: single quotes hold anything but NUL, a newline included.
    Command,
    /// A comment line: a line break would end it.
    Comment,
    /// A path in an `#SBATCH` line (`--chdir`, `--output`).
    SbatchPath,
    /// The value of an `#SBATCH` option (`--partition`, `--gres`, ...).
    SbatchOption,
}

/// Refuses `value` (the value of `option`) where it cannot be written as `place` needs, with a
/// message naming the option and the problem.
fn check(option: &str, value: &str, place: Place) -> Result<()> {
    if let Some(c) = value.chars().find(|c| *c == '\0') {
        bail!("{option} {value:?} holds {c:?}: a shell script cannot hold a NUL byte");
    }
    if place == Place::Command {
        return Ok(());
    }
    let line = if place == Place::Comment { "a comment line" } else { "an #SBATCH line" };
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        bail!(
            "{option} {value:?} holds the control character {c:?}, which cannot be written into \
             {line} of the generated scripts (a line break would end the line, and what follows \
             would run as a command or be read as another option)"
        );
    }
    if place == Place::Comment {
        return Ok(());
    }
    if value.contains('\\') {
        bail!(
            "{option} {value:?} holds a backslash: sbatch reads one in an #SBATCH line as an \
             escape and drops it (and one in --output turns off the %j patterns of the log names)"
        );
    }
    let lower = value.to_lowercase();
    if let Some(word) = ["hetjob", "packjob"].into_iter().find(|w| lower.contains(w)) {
        bail!(
            "{option} {value:?} holds {word:?}: Slurm before 21.08 (and its burst-buffer plugins \
             still) read that word in an #SBATCH line as the separator of a heterogeneous job"
        );
    }
    if place == Place::SbatchOption {
        if value.is_empty() {
            bail!("{option} is empty: leave it out for the cluster's default");
        }
        if value.chars().any(char::is_whitespace) {
            bail!(
                "{option} {value:?} holds whitespace: no Slurm partition, account, GRES, time or \
                 memory value has any, and sbatch would pass it on as part of the value"
            );
        }
    }
    Ok(())
}

/// `path` as text, checked for `place`; refused when it is not UTF-8 (a script could not name it
/// exactly).
fn path_text<'a>(option: &str, path: &'a Path, place: Place) -> Result<&'a str> {
    let Some(text) = path.to_str() else {
        bail!("{option} {path:?} is not valid UTF-8: a generated script could not name it exactly")
    };
    check(option, text, place)?;
    Ok(text)
}

/// The `#SBATCH` lines every script of the run shares: job name, log (`log_dir` holds no `%`
/// pattern of its own: each `%` is written `%%`), working directory and the shared options, each
/// value already checked.
fn header(
    name: &str,
    log_dir: &str,
    log_name: &str,
    cwd: &str,
    options: &[(&str, &str)],
) -> String {
    let log = format!("{}/{log_name}", log_dir.replace('%', "%%"));
    let mut h = format!(
        "#!/usr/bin/env bash\n#SBATCH --job-name={}\n#SBATCH --output={}\n#SBATCH --chdir={}\n",
        shell_quote(name),
        shell_quote(&log),
        shell_quote(cwd)
    );
    for (flag, value) in options {
        h += &format!("#SBATCH --{flag}={}\n", shell_quote(value));
    }
    h
}

pub fn train(args: &SlurmTrainArgs) -> Result<()> {
    // The training arguments are checked as `gnn-soup train` would check them, now, not on the
    // cluster an hour later.
    let parsed = Cli::try_parse_from(
        ["gnn-soup".to_string(), "train".to_string()].into_iter().chain(args.train.iter().cloned()),
    )
    .map_err(|e| {
        anyhow::anyhow!("the arguments after -- are not valid `gnn-soup train` arguments:\n{e}")
    })?;
    let Some(Command::Train(train)) = parsed.command else {
        bail!("expected `gnn-soup train` arguments after --")
    };
    if train.shard.is_some() || train.collect.is_some() || train.init_only {
        bail!("leave --shard, --collect and --init-only out: each task gets its --shard, and the last job collects");
    }
    let Some(out) = train.out.clone() else {
        bail!("the training arguments need --out: the directory every task writes into (on storage all nodes share)")
    };
    let cwd = std::env::current_dir().context("the current directory")?;
    let exe = std::env::current_exe().context("the path of this gnn-soup binary")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
    let dir = abs(&args.script_dir.clone().unwrap_or_else(|| out.join("slurm")));

    // Every value a script will hold, checked for where it goes before anything is written.
    let cwd_text = path_text("the current directory", &cwd, Place::SbatchPath)?;
    let gnn = shell_quote(path_text("the path of this gnn-soup binary", &exe, Place::Command)?);
    let out_text = path_text("--out (after --)", &out, Place::Comment)?;
    for arg in &args.train {
        check("an argument after --", arg, Place::Command)?;
    }
    let dir_option = if args.script_dir.is_some() {
        "--script-dir"
    } else {
        "--out (after --), whose slurm/ folder holds the scripts unless --script-dir says otherwise,"
    };
    let dir_text = path_text(dir_option, &dir, Place::SbatchPath)?;
    let mut shared = Vec::new();
    for (flag, value) in
        [("partition", &args.partition), ("account", &args.account), ("mem", &args.mem)]
    {
        if let Some(v) = value {
            check(&format!("--{flag}"), v, Place::SbatchOption)?;
            shared.push((flag, v.as_str()));
        }
    }
    let mut array_only = Vec::new();
    for (flag, value) in [("gres", &args.gres), ("time", &args.time)] {
        if let Some(v) = value {
            check(&format!("--{flag}"), v, Place::SbatchOption)?;
            array_only.push((flag, v.as_str()));
        }
    }
    let soup = match &args.soup_out {
        Some(soup_out) => {
            let soup_out = path_text("--soup-out", soup_out, Place::Command)?;
            check("--soup-strategy", &args.soup_strategy, Place::Command)?;
            let recipe = match &args.soup_recipe {
                Some(r) => format!(
                    " --recipe {}",
                    shell_quote(path_text("--soup-recipe", &abs(r), Place::Command)?)
                ),
                None => String::new(),
            };
            Some(format!(
                "{gnn} soup --ingredients {} --strategy {}{recipe} --out {}\n",
                shell_quote(out_text),
                shell_quote(&args.soup_strategy),
                shell_quote(soup_out)
            ))
        }
        None => None,
    };

    let n = args.array;
    let train_words = args.train.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    let train_path = dir.join("train.sbatch");
    let collect_path = dir.join("collect.sbatch");
    let submit_path = dir.join("submit.sh");

    let mut array = header("gnn-soup-train", dir_text, "train-%A_%a.log", cwd_text, &shared);
    array += &format!("#SBATCH --array=0-{}\n", n - 1);
    for (flag, value) in &array_only {
        array += &format!("#SBATCH --{flag}={}\n", shell_quote(value));
    }
    if let Some(c) = args.cpus_per_task {
        array += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    array += &format!(
        "# Written by `gnn-soup slurm train`. Task I trains the ingredients i with i % {n} == I into\n# {}; a task run again resumes (finished ingredients are kept).\nset -euo pipefail\nexec {gnn} train {train_words} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\"\n",
        shell_quote(out_text)
    );

    let mut collect = header("gnn-soup-collect", dir_text, "collect-%j.log", cwd_text, &shared);
    collect += &format!(
        "# Written by `gnn-soup slurm train`: runs once every training task succeeded.\nset -euo pipefail\n{gnn} train --collect {}\n",
        shell_quote(out_text)
    );
    collect += soup.as_deref().unwrap_or("");

    let quoted = |p: &Path| path_text(dir_option, p, Place::Command).map(shell_quote);
    let submit = format!(
        "#!/usr/bin/env bash\n# Written by `gnn-soup slurm train`: the shared init, then the array, then the collecting job.\nset -euo pipefail\ncd {}\n{gnn} train {train_words} --init-only\narray=$(sbatch --parsable {})\narray=${{array%%;*}}\ncollect=$(sbatch --parsable --dependency=afterok:\"$array\" {})\ncollect=${{collect%%;*}}\necho \"submitted: training array $array ({n} tasks), then job $collect (collect{}) once all succeeded\"\nprintf 'logs: %s/\\n' {}\n",
        shell_quote(cwd_text),
        quoted(&train_path)?,
        quoted(&collect_path)?,
        if args.soup_out.is_some() { " and soup" } else { "" },
        shell_quote(dir_text)
    );
    let files = [(train_path, array), (collect_path, collect), (submit_path.clone(), submit)];
    if !args.overwrite {
        if let Some((f, _)) = files.iter().find(|(f, _)| f.exists()) {
            bail!("{} already exists (pass --overwrite to replace the scripts)", f.display());
        }
    }
    write_all(&dir, &files)?;
    if !args.submit {
        eprintln!(
            "wrote {}, {} and {}",
            files[0].0.display(),
            files[1].0.display(),
            submit_path.display()
        );
        println!("bash {}", quoted(&submit_path)?);
        return Ok(());
    }
    let status = std::process::Command::new("bash")
        .arg(&submit_path)
        .status()
        .with_context(|| format!("cannot run {}", submit_path.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); is sbatch on the PATH, and is the cluster up?",
            submit_path.display()
        );
    }
    Ok(())
}

/// Writes every script or none: each into a temporary file in `dir` first, synced; only when all
/// are written are they renamed into place (a rename within one directory does not fail for want
/// of space). On an error the temporary files, and the folders this call created, are removed.
fn write_all(dir: &Path, files: &[(PathBuf, String)]) -> Result<()> {
    let created: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written: Result<Vec<_>> = files
        .iter()
        .map(|(path, text)| {
            crate::fsio::check_replaceable(path)?;
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!(".{name}."))
                .suffix(".partial")
                .tempfile_in(dir)
                .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
            tmp.write_all(text.as_bytes())
                .and_then(|()| tmp.as_file().sync_all())
                .with_context(|| format!("cannot write {} (disk full?)", path.display()))?;
            Ok((tmp, path))
        })
        .collect();
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            // The temporary files are gone (dropped); the folders made for them go too.
            for d in created {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
    };
    for (tmp, path) in written {
        tmp.persist(path).map_err(|e| {
            anyhow::anyhow!("cannot move the new {} into place: {}", path.display(), e.error)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, shell_quote, Place};

    #[test]
    fn quoted_words_survive_bash() {
        assert_eq!(shell_quote("gpu:1"), "'gpu:1'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        // Whatever the text, bash reads the quoted word back as that text and runs nothing.
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "plain",
            "",
            "a b",
            "$(touch PWNED)",
            "`touch PWNED`",
            "x; touch PWNED && echo",
            "it's \"quoted\" \\ * ? ~ #",
            "'",
            "''\\''",
            "line\nbreak\r\ttab",
            "${HOME} $HOME !! %s",
        ] {
            let out = std::process::Command::new("bash")
                .current_dir(dir.path())
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a command ran");
    }

    #[test]
    fn values_a_place_cannot_hold_are_refused_by_name() {
        let refused =
            |value: &str, place| check("--partition", value, place).unwrap_err().to_string();
        for bad in ["gpu\n#SBATCH --x", "a\rb", "a\u{7f}", "a\u{85}b"] {
            for place in [Place::Comment, Place::SbatchPath, Place::SbatchOption] {
                let e = refused(bad, place);
                assert!(e.starts_with("--partition ") && e.contains("control character"), "{e}");
            }
            check("--partition", bad, Place::Command).unwrap();
        }
        assert!(refused("a\0b", Place::Command).contains("NUL"));
        assert!(refused("a\\b", Place::SbatchPath).contains("backslash"));
        check("--partition", "a\\b", Place::Comment).unwrap();
        assert!(refused("/x/HetJob/y", Place::SbatchPath).contains("heterogeneous"));
        assert!(refused("packjob", Place::SbatchOption).contains("heterogeneous"));
        assert!(refused("gpu short", Place::SbatchOption).contains("whitespace"));
        check("--partition", "/a dir/with space", Place::SbatchPath).unwrap();
        assert!(refused("", Place::SbatchOption).contains("empty"));
        check("--partition", "$(touch${IFS}x);'\"`*&&#", Place::SbatchOption).unwrap();
    }
}
