//! `Procfile`: `<type>: <command>` lines (`web`, `worker`, `release`, …).

use crate::error::PlanError;

/// The file name.
pub const FILE: &str = "Procfile";

/// One process type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The process type, e.g. `web`.
    pub name: String,
    /// The command, run by a shell.
    pub command: String,
    /// 1-based line.
    pub line: usize,
}

/// A parsed Procfile.
#[derive(Debug, Clone, Default)]
pub struct Procfile {
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

impl Procfile {
    /// The entry of a process type.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Parses a Procfile: blank lines and `#` comments are skipped; every other line is `type: command`.
pub fn parse(text: &str) -> Result<Procfile, PlanError> {
    let expected = "lines of the form `web: <command>` (process type: letters, digits, _ and -)";
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(PlanError::malformed(
                FILE,
                Some(line),
                format!("{trimmed:?} has no `type:`"),
                Some(expected),
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PlanError::malformed(
                FILE,
                Some(line),
                format!("{name:?} is not a process type"),
                Some(expected),
            ));
        }
        let command = command.trim();
        if command.is_empty() {
            return Err(PlanError::malformed(
                FILE,
                Some(line),
                format!("process type {name} has no command"),
                Some(expected),
            ));
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            return Err(PlanError::malformed(
                FILE,
                Some(line),
                format!(
                    "process type {name} is defined twice (first on line {})",
                    first.line
                ),
                Some(expected),
            ));
        }
        entries.push(Entry {
            name: name.to_owned(),
            command: command.to_owned(),
            line,
        });
    }
    Ok(Procfile { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_and_lines() {
        let procfile = parse("# comment\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\nrelease: python manage.py migrate\n").expect("valid");
        assert_eq!(procfile.get("web").map(|e| e.line), Some(2));
        assert_eq!(
            procfile.get("release").map(|e| e.command.as_str()),
            Some("python manage.py migrate")
        );
        assert!(procfile.get("worker").is_none());
    }

    #[test]
    fn malformed_lines_are_errors_with_the_line() {
        for (text, line) in [
            ("web gunicorn\n", 1),
            ("web: a\nweb: b\n", 2),
            ("\nworker:\n", 2),
            ("we b: x\n", 1),
        ] {
            match parse(text) {
                Err(PlanError::Malformed {
                    file, line: got, ..
                }) => {
                    assert_eq!(file, "Procfile");
                    assert_eq!(got, Some(line), "{text:?}");
                }
                other => panic!("{text:?}: unexpected {other:?}"),
            }
        }
    }
}
