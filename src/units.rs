//! How numbers read to a person, the same in the command line's tables and the workbench.

/// `0.8123` as `81.23%`; `-` for a value not measured (NaN).
pub fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "-".into()
    }
}

/// Bytes as whole MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_as_people_write_it() {
        assert_eq!(super::percent(0.81234), "81.23%");
        assert_eq!(super::percent(f64::NAN), "-");
        assert_eq!(super::mib(3 << 20), "3");
    }
}
