//! The JSON report: the report's fields as they are, for machines.

use super::Report;

/// The report as pretty-printed JSON, one trailing newline.
pub fn json(r: &Report) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::super::tests::report;
    use super::*;

    #[test]
    fn the_json_report_is_one_object_ending_in_a_newline() {
        let text = json(&report(Vec::new())).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["tool"], "bee-trace");
        assert_eq!(v["total_events"], 1);
    }
}
