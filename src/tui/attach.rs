//! Following an events file (a run directory's `events.jsonl`, a training run's
//! `train-events.jsonl`) while another process writes it, like `tail -f`.

use std::io::BufRead;
use std::time::Duration;

use serde::de::DeserializeOwned;

/// Reads whole event lines as they arrive. A line still being written stays in `partial` until
/// its newline arrives, so an event is never read half-written.
#[derive(Default)]
pub struct Follower {
    partial: String,
    /// Lines that did not parse as an event (a newer tool's event, say): skipped, counted.
    pub skipped: usize,
}

impl Follower {
    /// The complete events `reader` holds now; an empty vector when nothing new is there yet.
    pub fn poll<T: DeserializeOwned>(
        &mut self,
        reader: &mut impl BufRead,
    ) -> std::io::Result<Vec<T>> {
        let mut events = Vec::new();
        loop {
            let n = reader.read_line(&mut self.partial)?;
            if n == 0 || !self.partial.ends_with('\n') {
                return Ok(events);
            }
            match serde_json::from_str::<T>(self.partial.trim()) {
                Ok(e) => events.push(e),
                Err(_) if self.partial.trim().is_empty() => {}
                Err(_) => self.skipped += 1,
            }
            self.partial.clear();
        }
    }
}

/// Follows `path` until `send` refuses an event (the viewer closed): waits up to 10 s for the
/// file to appear, then polls it every 200 ms. A file that cannot be read is told as
/// `failed(message)`.
pub fn follow<T: DeserializeOwned>(
    path: std::path::PathBuf,
    send: impl Fn(T) -> bool,
    failed: impl Fn(String) -> T,
) {
    let mut waited = 0;
    let file = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if waited < 50 => {
                std::thread::sleep(Duration::from_millis(200));
                waited += 1;
            }
            Err(e) => {
                send(failed(format!("cannot read {}: {e}", path.display())));
                return;
            }
        }
    };
    let mut reader = std::io::BufReader::new(file);
    let mut follower = Follower::default();
    loop {
        match follower.poll(&mut reader) {
            Ok(events) if events.is_empty() => std::thread::sleep(Duration::from_millis(200)),
            Ok(events) => {
                for e in events {
                    if !send(e) {
                        return;
                    }
                }
            }
            Err(e) => {
                send(failed(format!("reading {}: {e}", path.display())));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;
    use std::cell::RefCell;
    use std::io::Read;
    use std::rc::Rc;

    /// A reader over a buffer another party keeps appending to (a file being written).
    struct Growing {
        data: Rc<RefCell<Vec<u8>>>,
        at: usize,
    }

    impl Read for Growing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let data = self.data.borrow();
            let n = buf.len().min(data.len() - self.at);
            buf[..n].copy_from_slice(&data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_half_written_line_waits_for_its_newline() {
        let data = Rc::new(RefCell::new(Vec::new()));
        let mut reader =
            std::io::BufReader::with_capacity(8, Growing { data: data.clone(), at: 0 });
        let mut f = Follower::default();
        assert!(f.poll::<Event>(&mut reader).unwrap().is_empty());
        let line = r#"{"event":"log","level":"info","message":"hello"}"#;
        data.borrow_mut().extend_from_slice(&line.as_bytes()[..20]);
        assert!(f.poll::<Event>(&mut reader).unwrap().is_empty(), "half a line is not an event");
        data.borrow_mut().extend_from_slice(&line.as_bytes()[20..]);
        data.borrow_mut().extend_from_slice(b"\nnot json\n");
        data.borrow_mut().extend_from_slice(br#"{"event":"failed","message":"boom"}"#);
        data.borrow_mut().push(b'\n');
        let events: Vec<Event> = f.poll(&mut reader).unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], Event::Log { message, .. } if message == "hello"));
        assert!(matches!(&events[1], Event::Failed { message } if message == "boom"));
        assert_eq!(f.skipped, 1);
    }
}
