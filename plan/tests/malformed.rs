//! Malformed project files: an error naming the file, the line where known, and what was expected.

mod common;

use common::{defaults, try_plan};
use pyslip_plan::PlanError;

#[test]
fn every_malformed_file_names_file_line_and_expectation() {
    // (file, content, expected line)
    let cases: &[(&str, &str, Option<usize>)] = &[
        (".python-version", "\n# pyenv\npypy3.10\n", Some(3)),
        (".python-version", "my-virtualenv\n", Some(1)),
        ("runtime.txt", "\n3.11\n", Some(2)),
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = [\"fastapi\",\n",
            Some(3),
        ),
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\nrequires-python = \"=>3.11\"\n",
            Some(3),
        ),
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = [\"fast api!!\"]\n",
            Some(3),
        ),
        (
            "Pipfile",
            "[packages]\nflask = \"*\"\n[requires]\npython_version = \"three\"\n",
            Some(4),
        ),
        ("Pipfile", "[packages\n", Some(1)),
        (
            "Pipfile.lock",
            "{\n  \"_meta\": {},\n  \"default\": {,}\n}\n",
            Some(3),
        ),
        (
            "poetry.lock",
            "[[package]]\nname = \"x\"\nversion = \n",
            Some(3),
        ),
        (
            "uv.lock",
            "version = 1\n\n[[package]]\nname = [1]\n",
            Some(4),
        ),
        (
            "Procfile",
            "web: gunicorn app:app\nthis is not a procfile line\n",
            Some(2),
        ),
        (
            "pyslip.toml",
            "python = \"3.12\"\nport = \"http\"\n",
            Some(2),
        ),
        ("pyslip.toml", "cmd = \"x\"\n\nworkers = 4\n", Some(3)),
        ("requirements.txt", "flask\n\n--frobnicate\n", Some(3)),
        ("requirements.txt", "flask\nnot a requirement !!\n", Some(2)),
        (".dockerignore", "ok\n[unclosed\n", Some(2)),
    ];
    for (file, content, line) in cases {
        let mut files = vec![("main.py", ""), (*file, *content)];
        if matches!(*file, "uv.lock" | "poetry.lock") {
            files.push(("pyproject.toml", "[project]\nname = \"x\"\n"));
        }
        let err = match try_plan(&files, &defaults()) {
            Ok(_) => panic!("{file}: {content:?} was accepted"),
            Err(err) => err,
        };
        match &err {
            PlanError::Malformed {
                file: got,
                line: got_line,
                ..
            } => {
                assert_eq!(got, file, "{content:?}: {err}");
                assert_eq!(got_line, line, "{file} {content:?}: {err}");
            }
            other => panic!("{file}: unexpected error {other}"),
        }
        let text = err.to_string();
        assert!(text.starts_with(&format!("{file}:")), "{text}");
        assert!(err.hint().is_some(), "{file}: no hint for {text}");
    }
}

#[test]
fn non_utf8_files_are_errors_not_panics() {
    let dir = common::project(&[("main.py", "")]);
    fs_err::write(dir.path().join("runtime.txt"), [0xff, 0xfe, b'3']).expect("write");
    let err = pyslip_plan::plan(dir.path(), &defaults()).expect_err("binary");
    assert!(err.to_string().starts_with("runtime.txt"), "{err}");
}

#[test]
fn missing_project_dir_is_an_error() {
    let err = pyslip_plan::plan(std::path::Path::new("/nonexistent/pyslip"), &defaults())
        .expect_err("missing");
    assert!(matches!(err, PlanError::NotADirectory { .. }));
}
