//! A run's `events.jsonl` as `tui --attach` reads it, applied to the workbench's state.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut follower = gnn_soup::tui::attach::Follower::default();
    let mut reader = std::io::BufReader::new(data);
    if let Ok(events) = follower.poll(&mut reader) {
        let mut app = gnn_soup::tui::app::App::attached("fuzz", "fuzz".to_string());
        for e in &events {
            app.apply(e);
        }
    }
});
