//! Following an events file (a run directory's `events.jsonl`, a training run's
//! `train-events.jsonl`) while another process writes it, like `tail -f`.

use std::io::{BufRead, Read};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// The longest event line read (an epoch of a thousand-tensor model's weights is well under it);
/// a longer one is skipped while it is read, never held whole.
pub const MAX_EVENT_LINE: usize = 16 << 20;

/// Reads whole event lines as they arrive. A line still being written stays in `partial` until
/// its newline arrives, so an event is never read half-written; no more than
/// [`MAX_EVENT_LINE`] bytes of a line are held.
#[derive(Default)]
pub struct Follower {
    partial: Vec<u8>,
    /// Dropping the rest of a line that grew past [`MAX_EVENT_LINE`].
    discarding: bool,
    /// Lines that did not parse as an event (a newer tool's event, say): skipped, counted.
    pub skipped: usize,
    /// Lines longer than [`MAX_EVENT_LINE`]: skipped, counted.
    pub too_long: usize,
}

impl Follower {
    /// The complete events `reader` holds now; an empty vector when nothing new is there yet.
    pub fn poll<T: DeserializeOwned>(
        &mut self,
        reader: &mut impl BufRead,
    ) -> std::io::Result<Vec<T>> {
        let mut events = Vec::new();
        loop {
            let room = (MAX_EVENT_LINE + 1).saturating_sub(self.partial.len()).max(1);
            let n = reader.by_ref().take(room as u64).read_until(b'\n', &mut self.partial)?;
            let complete = self.partial.last() == Some(&b'\n');
            if !complete && self.partial.len() > MAX_EVENT_LINE {
                if !self.discarding {
                    self.too_long += 1;
                }
                self.discarding = true;
                self.partial.clear();
                continue;
            }
            if n == 0 || !complete {
                return Ok(events);
            }
            if std::mem::take(&mut self.discarding) {
                self.partial.clear();
                continue;
            }
            let line = String::from_utf8_lossy(&self.partial);
            match serde_json::from_str::<T>(line.trim()) {
                Ok(e) => events.push(e),
                Err(_) if line.trim().is_empty() => {}
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
    let mut told = 0;
    loop {
        let polled = follower.poll(&mut reader);
        if follower.too_long > told {
            told = follower.too_long;
            tracing::warn!(
                "{}: skipped a line longer than {} MiB (not an event gnn-soup writes)",
                path.display(),
                MAX_EVENT_LINE >> 20
            );
        }
        match polled {
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

    /// Found by a hostile events file: one line of gigabytes was read whole and aborted the
    /// viewer. It is skipped as it is read, holding at most the limit, and the next line counts.
    #[test]
    fn a_line_beyond_the_limit_is_skipped_without_being_held() {
        let data = Rc::new(RefCell::new(Vec::new()));
        let mut reader = std::io::BufReader::new(Growing { data: data.clone(), at: 0 });
        let mut f = Follower::default();
        data.borrow_mut().extend(std::iter::repeat_n(b'x', MAX_EVENT_LINE + 10));
        assert!(f.poll::<Event>(&mut reader).unwrap().is_empty());
        assert!(f.partial.len() <= MAX_EVENT_LINE + 1, "held {}", f.partial.len());
        data.borrow_mut().extend(std::iter::repeat_n(b'y', 1000));
        data.borrow_mut().extend_from_slice(b"\n{\"event\":\"failed\",\"message\":\"next\"}\n");
        let events: Vec<Event> = f.poll(&mut reader).unwrap();
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], Event::Failed { message } if message == "next"));
        assert_eq!((f.too_long, f.skipped), (1, 0));
    }
}
