//! How numbers read to a person, the same in the command line's tables and the workbench.

/// `0.8123` as `81.23%`; `-` for a value not measured (NaN).
pub fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "-".into()
    }
}

/// Serde for a number that may be "not measured" (NaN): JSON has no NaN, so it is written as
/// `null` and read back as NaN (a run's `events.jsonl` must replay in `tui --attach`).
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Bytes as whole MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1u64 << 20) as f64)
}

/// A size as people write it: `512MiB`, `20G`, `1.5GiB`, `4096` (bytes). Powers of 1024.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_as_people_write_it() {
        assert_eq!(super::percent(0.81234), "81.23%");
        assert_eq!(super::percent(f64::NAN), "-");
        assert_eq!(super::mib(3 << 20), "3");
        #[derive(serde::Serialize, serde::Deserialize)]
        struct R(#[serde(with = "super::nan_as_null")] f64);
        let text = serde_json::to_string(&R(f64::NAN)).unwrap();
        assert_eq!(text, "null");
        assert!(serde_json::from_str::<R>(&text).unwrap().0.is_nan());
        assert_eq!(serde_json::from_str::<R>("0.5").unwrap().0, 0.5);
        assert_eq!(super::parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(super::parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(super::parse_bytes(" 4096 "), Some(4096));
        assert_eq!(super::parse_bytes("20 GB"), Some(20 << 30));
        assert_eq!(super::parse_bytes("lots"), None);
        assert_eq!(super::parse_bytes("5 parsecs"), None);
    }
}
