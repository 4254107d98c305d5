//! Property test: arbitrary bytes fed to every parser (and to `plan()` through every detection
//! file) give a value or an error, never a panic.

mod common;

use proptest::prelude::*;
use pyslip_plan::parsers;

fn all_parsers(text: &str) {
    let _ = parsers::python_version_file(text);
    let _ = parsers::runtime_txt(text);
    let _ = parsers::pyproject_toml(text);
    let _ = parsers::pyslip_toml(text);
    let _ = parsers::pipfile(text);
    let _ = parsers::pipfile_lock(text);
    let _ = parsers::poetry_lock(text);
    let _ = parsers::uv_lock(text);
    let _ = parsers::procfile(text);
    let _ = parsers::dockerignore(text);
    parsers::python_specifier(text);
    parsers::requirement(text);
}

/// Text made of the characters these formats are built from, so cases get past the first byte.
fn formatish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("[project]\n"),
            Just("[tool.pyslip]\n"),
            Just("[[package]]\n"),
            Just("name = "),
            Just("\"x\""),
            Just("dependencies = ["),
            Just("]"),
            Just("{"),
            Just("}"),
            Just(","),
            Just(":"),
            Just("="),
            Just("\n"),
            Just("python-3.11"),
            Just("3.12"),
            Just(">="),
            Just("^"),
            Just("~"),
            Just("||"),
            Just("*"),
            Just("!"),
            Just(";"),
            Just(" and "),
            Just("python_version"),
            Just("'3.8'"),
            Just("web: "),
            Just("-r "),
            Just("#"),
            Just("\\"),
            Just("["),
            Just("**/"),
            Just("extra"),
            Just("\"_meta\""),
            Just("\"default\""),
            Just("é"),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

const FILES: &[&str] = &[
    ".python-version",
    "runtime.txt",
    "pyproject.toml",
    "pyslip.toml",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "Procfile",
    "requirements.txt",
    ".dockerignore",
    "setup.cfg",
    "setup.py",
    "manage.py",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn format_like_text_never_panics(text in formatish()) {
        all_parsers(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn plan_never_panics_on_any_detection_file(file in 0..FILES.len(), text in formatish(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let name = FILES.get(file).copied().unwrap_or("Procfile");
        let dir = common::project(&[("main.py", "")]);
        let mut content = text.into_bytes();
        content.extend(bytes);
        fs_err::write(dir.path().join(name), content).expect("write");
        let _ = pyslip_plan::plan(dir.path(), &common::defaults());
    }
}
