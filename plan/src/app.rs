//! Finding the app file and its application variable by reading (never importing) the source.

use crate::error::PlanError;
use crate::model::AppTarget;
use crate::project::Project;

/// Files a generic app or a worker may be started from, in search order.
pub const GENERIC_FILES: &[&str] = &["main.py", "app.py", "application.py"];

/// Candidate app files in detection.md's search order (`src/<pkg>/main.py` expanded).
pub fn candidates(project: &Project) -> Result<Vec<String>, PlanError> {
    let mut files: Vec<String> = ["main.py", "app.py", "application.py", "app/main.py"]
        .map(str::to_owned)
        .to_vec();
    for pkg in project.subdirs("src")? {
        files.push(format!("src/{pkg}/main.py"));
    }
    files.extend(["wsgi.py", "asgi.py"].map(str::to_owned));
    Ok(files.into_iter().filter(|f| project.is_file(f)).collect())
}

/// The module path of a project file, and the directory that must be on `sys.path` for it.
pub fn module_of(file: &str) -> (String, Option<String>) {
    let (dir, rest) = match file.strip_prefix("src/") {
        Some(rest) => (Some("src".to_owned()), rest),
        None => (None, file),
    };
    let module = rest.trim_end_matches(".py").replace('/', ".");
    (module, dir)
}

/// The module-level variable assigned from `constructor(` (e.g. `app = FastAPI(`), if any.
pub fn variable_for(source: &str, constructor: &str) -> Option<String> {
    for line in source.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((left, right)) = line.split_once('=') else {
            continue;
        };
        if right.starts_with('=') || left.ends_with(['!', '<', '>', '=']) {
            continue;
        }
        let name = left.split(':').next().unwrap_or(left).trim();
        if !is_identifier(name) {
            continue;
        }
        let value = right.trim();
        let call = value
            .rsplit_once('.')
            .filter(|(prefix, _)| is_dotted(prefix))
            .map_or(value, |(_, tail)| tail);
        if call.starts_with(&format!("{constructor}(")) {
            return Some(name.to_owned());
        }
    }
    None
}

/// Whether the file defines a Flask-style application factory `create_app`.
pub fn has_factory(source: &str) -> bool {
    source.lines().any(|l| l.starts_with("def create_app("))
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn is_dotted(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}

/// Finds the app for a framework whose object is built by `constructor` (`Flask`, `FastAPI`):
/// the first candidate that constructs it, else the first candidate; the variable defaults to `app`.
pub fn find(project: &Project, constructor: &str) -> Result<Option<AppTarget>, PlanError> {
    let files = candidates(project)?;
    let mut first = None;
    for file in &files {
        let source = project.read(file)?.unwrap_or_default();
        let variable = variable_for(&source, constructor).or_else(|| {
            (constructor == "Flask" && has_factory(&source)).then(|| "create_app()".to_owned())
        });
        if let Some(variable) = variable {
            return Ok(Some(target(file, variable)));
        }
        if first.is_none() {
            first = Some(file.clone());
        }
    }
    Ok(first.map(|file| target(&file, "app".to_owned())))
}

fn target(file: &str, variable: String) -> AppTarget {
    let (module, app_dir) = module_of(file);
    AppTarget {
        file: file.to_owned(),
        module,
        variable,
        app_dir,
    }
}

/// The first existing file of `files`.
pub fn first_existing(project: &Project, files: &[&str]) -> Option<String> {
    files
        .iter()
        .find(|f| project.is_file(f))
        .map(|f| (*f).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_assigned_variables() {
        assert_eq!(
            variable_for(
                "from flask import Flask\nserver = Flask(__name__)\n",
                "Flask"
            )
            .as_deref(),
            Some("server")
        );
        assert_eq!(
            variable_for(
                "import fastapi\napi: fastapi.FastAPI = fastapi.FastAPI(title='x')\n",
                "FastAPI"
            )
            .as_deref(),
            Some("api")
        );
        assert_eq!(
            variable_for("def f():\n    inner = Flask(__name__)\n", "Flask"),
            None
        );
        assert_eq!(variable_for("x == Flask(1)\n", "Flask"), None);
        assert_eq!(variable_for("app = MyFlask(__name__)\n", "Flask"), None);
    }

    #[test]
    fn modules_of_files() {
        assert_eq!(module_of("app/main.py"), ("app.main".to_owned(), None));
        assert_eq!(
            module_of("src/demo/main.py"),
            ("demo.main".to_owned(), Some("src".to_owned()))
        );
    }
}
