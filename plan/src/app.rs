//! Finding the app file and its application object by reading (never importing) the source,
//! the way `fastapi run` and `flask run` discover an app: top-level files first, then the
//! project's packages (flat and `src/` layouts), each read as text, bounded, in a fixed order.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::error::PlanError;
use crate::frameworks::FACTORIES;
use crate::model::{AppTarget, Server};
use crate::project::Project;

/// Files a generic app or a worker may be started from, in search order.
pub const GENERIC_FILES: &[&str] = &["main.py", "app.py", "application.py"];
/// App files at the top of the project, in search order.
const TOP_FILES: &[&str] = &[
    "main.py",
    "app.py",
    "application.py",
    "api.py",
    "server.py",
    "wsgi.py",
    "asgi.py",
];
/// App files inside a package, in search order.
const PACKAGE_FILES: &[&str] = &["__init__.py", "app.py", "main.py", "api.py", "server.py"];
/// Folders that hold no app even when they are packages.
const NOT_APPS: &[&str] = &["tests", "test", "docs", "examples", "scripts", "migrations"];
/// At most this many packages are looked into (per layout).
const MAX_PACKAGES: usize = 64;
/// Only the head of a file is read.
const MAX_SOURCE: u64 = 1024 * 1024;

/// The project's source files as the app search reads them, each read once.
#[derive(Debug)]
pub(crate) struct Sources<'a> {
    project: &'a Project,
    cache: RefCell<BTreeMap<String, Option<String>>>,
}

impl<'a> Sources<'a> {
    /// A reader over `project`.
    pub(crate) fn new(project: &'a Project) -> Self {
        Sources {
            project,
            cache: RefCell::new(BTreeMap::new()),
        }
    }

    /// The project.
    pub(crate) fn project(&self) -> &Project {
        self.project
    }

    /// The head of `rel` as text (`None`: not a regular file).
    pub(crate) fn read(&self, rel: &str) -> Result<Option<String>, PlanError> {
        if let Some(text) = self.cache.borrow().get(rel) {
            return Ok(text.clone());
        }
        let text = self.project.read_head(rel, MAX_SOURCE)?;
        self.cache.borrow_mut().insert(rel.to_owned(), text.clone());
        Ok(text)
    }

    /// Candidate app files in search order: [`TOP_FILES`], then in each package (`app/` first,
    /// then the other top-level packages, then `src/<pkg>`, each sorted) [`PACKAGE_FILES`].
    pub(crate) fn candidates(&self) -> Result<Vec<String>, PlanError> {
        let project = self.project;
        let mut files: Vec<String> = TOP_FILES.iter().map(|f| (*f).to_owned()).collect();
        let mut packages = vec!["app".to_owned()];
        let flat = project.subdirs("")?;
        packages.extend(
            flat.into_iter()
                .filter(|d| d != "app" && d != "src" && !NOT_APPS.contains(&d.as_str()))
                .filter(|d| project.is_file(&format!("{d}/__init__.py")))
                .take(MAX_PACKAGES),
        );
        packages.extend(
            project
                .subdirs("src")?
                .into_iter()
                .filter(|d| !NOT_APPS.contains(&d.as_str()))
                .take(MAX_PACKAGES)
                .map(|d| format!("src/{d}")),
        );
        for package in packages {
            files.extend(PACKAGE_FILES.iter().map(|f| format!("{package}/{f}")));
        }
        Ok(files.into_iter().filter(|f| project.is_file(f)).collect())
    }

    /// The first candidate with a top-level `<name> = <constructor>(…)` (or `= create_app(…)`)
    /// for one of `constructors`, in a file that mentions `import`; else the first with a
    /// top-level `def create_app(` that some server in its list can call.
    pub(crate) fn find_app(
        &self,
        import: &str,
        constructors: &[(&str, &'static [Server])],
    ) -> Result<Option<(AppTarget, &'static [Server])>, PlanError> {
        let files = self.candidates()?;
        for file in &files {
            let source = self.read(file)?.unwrap_or_default();
            if let Some((variable, line, servers)) = assignment(&source, import, constructors) {
                return Ok(Some((target(file, variable, Some(line)), servers)));
            }
        }
        for file in &files {
            let source = self.read(file)?.unwrap_or_default();
            if let Some((function, line)) = factory(&source) {
                let servers = constructors.last().map_or(&[][..], |(_, s)| *s);
                return Ok(Some((
                    target(file, format!("{function}()"), Some(line)),
                    servers,
                )));
            }
        }
        Ok(None)
    }

    /// The first of `preferred`, the candidates and the other top-level `.py` files that imports
    /// `module`.
    pub(crate) fn find_script(
        &self,
        preferred: &[&str],
        module: &str,
    ) -> Result<Option<String>, PlanError> {
        let mut files: Vec<String> = preferred
            .iter()
            .map(|f| (*f).to_owned())
            .filter(|f| self.project.is_file(f))
            .collect();
        files.extend(self.candidates()?);
        files.extend(self.project.top_level_python(MAX_PACKAGES)?);
        for file in files {
            if imports(&self.read(&file)?.unwrap_or_default(), module) {
                return Ok(Some(file));
            }
        }
        Ok(None)
    }
}

/// Whether `source` has a top-level `import module` / `from module` (also `import module.x`).
pub(crate) fn imports(source: &str, module: &str) -> bool {
    source.lines().any(|line| {
        let rest = line
            .strip_prefix("import ")
            .or_else(|| line.strip_prefix("from "))
            .map(str::trim_start);
        rest.is_some_and(|r| {
            r.split([' ', ',', '.'])
                .next()
                .is_some_and(|first| first == module)
        })
    })
}

/// The module path of a project file, and the directory that must be on `sys.path` for it
/// (a package's `__init__.py` is the package itself).
pub fn module_of(file: &str) -> (String, Option<String>) {
    let (dir, rest) = match file.strip_prefix("src/") {
        Some(rest) => (Some("src".to_owned()), rest),
        None => (None, file),
    };
    let rest = rest.trim_end_matches(".py");
    let rest = rest.strip_suffix("/__init__").unwrap_or(rest);
    (rest.replace('/', "."), dir)
}

/// The first top-level `<name> = <callee>(` whose callee is one of `constructors` (in a file
/// that mentions `import`) or a factory call: (variable, line, servers).
pub fn assignment(
    source: &str,
    import: &str,
    constructors: &[(&str, &'static [Server])],
) -> Option<(String, usize, &'static [Server])> {
    let mentions = source.contains(import);
    for (index, line) in source.lines().enumerate() {
        let Some((name, callee)) = assigned_call(line) else {
            continue;
        };
        // `Flask` matches `Flask(` and `flask.Flask(` (any module alias); a dotted pattern
        // (`web.Application`) only itself or under the framework's module
        // (`aiohttp.web.Application`), so tornado's `tornado.web.Application` is not aiohttp's.
        let is = |pattern: &str| {
            callee == pattern
                || if pattern.contains('.') {
                    callee
                        .strip_prefix(import)
                        .and_then(|r| r.strip_prefix('.'))
                        == Some(pattern)
                } else {
                    callee
                        .strip_suffix(pattern)
                        .is_some_and(|head| head.ends_with('.'))
                }
        };
        if mentions && let Some((_, servers)) = constructors.iter().find(|(pattern, _)| is(pattern))
        {
            return Some((name.to_owned(), index + 1, servers));
        }
        if FACTORIES.iter().any(|f| is(f)) {
            let servers = constructors.last().map_or(&[][..], |(_, s)| *s);
            return Some((name.to_owned(), index + 1, servers));
        }
    }
    None
}

/// `name = dotted.callee(` at the top level of a line: (name, callee).
fn assigned_call(line: &str) -> Option<(&str, &str)> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let (left, right) = line.split_once('=')?;
    if right.starts_with('=') || left.ends_with(['!', '<', '>', '=']) {
        return None;
    }
    let name = left.split(':').next().unwrap_or(left).trim();
    if !is_identifier(name) {
        return None;
    }
    let (callee, _) = right.trim().split_once('(')?;
    is_dotted(callee).then_some((name, callee))
}

/// A top-level `def create_app(` / `async def make_app(`: (function, line).
pub fn factory(source: &str) -> Option<(&'static str, usize)> {
    source.lines().enumerate().find_map(|(index, line)| {
        let rest = line.strip_prefix("async ").unwrap_or(line);
        let rest = rest.strip_prefix("def ")?;
        FACTORIES
            .iter()
            .find(|f| {
                rest.strip_prefix(**f)
                    .is_some_and(|r| r.trim_start().starts_with('('))
            })
            .map(|f| (*f, index + 1))
    })
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn is_dotted(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_identifier)
}

/// The app in `file`.
pub(crate) fn target(file: &str, variable: String, line: Option<usize>) -> AppTarget {
    let (module, app_dir) = module_of(file);
    AppTarget {
        file: file.to_owned(),
        module,
        variable,
        line,
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

    const S: &[Server] = &[Server::Gunicorn];

    fn var(source: &str, import: &str, constructor: &str) -> Option<String> {
        assignment(source, import, &[(constructor, S)]).map(|(v, _, _)| v)
    }

    #[test]
    fn finds_assigned_variables() {
        assert_eq!(
            var(
                "from flask import Flask\nserver = Flask(__name__)\n",
                "flask",
                "Flask"
            )
            .as_deref(),
            Some("server")
        );
        assert_eq!(
            var(
                "import fastapi\napi: fastapi.FastAPI = fastapi.FastAPI(title='x')\n",
                "fastapi",
                "FastAPI"
            )
            .as_deref(),
            Some("api")
        );
        assert_eq!(
            var("def f():\n    inner = Flask(__name__)\n", "flask", "Flask"),
            None
        );
        assert_eq!(var("x == Flask(1)\n", "flask", "Flask"), None);
        assert_eq!(var("app = MyFlask(__name__)\n", "flask", "Flask"), None);
        // A constructor in a file that does not mention the framework is someone else's.
        assert_eq!(
            var(
                "import tornado.web\napp = tornado.web.Application([])\n",
                "aiohttp",
                "web.Application"
            ),
            None
        );
        assert_eq!(
            var(
                "from aiohttp import web\napp = web.Application()\n",
                "aiohttp",
                "web.Application"
            )
            .as_deref(),
            Some("app")
        );
        assert_eq!(
            var(
                "from .factory import create_app\napplication = create_app()\n",
                "flask",
                "Flask"
            )
            .as_deref(),
            Some("application")
        );
    }

    #[test]
    fn lines_and_factories() {
        let source = "import flask\n\n\ndef create_app(config=None):\n    app = flask.Flask(__name__)\n    return app\n";
        assert_eq!(assignment(source, "flask", &[("Flask", S)]), None);
        assert_eq!(factory(source), Some(("create_app", 4)));
        assert_eq!(factory("async def make_app():\n"), Some(("make_app", 1)));
        assert_eq!(factory("def create_application():\n"), None);
        let found = assignment("import x\n\napp = x.Flask()\n", "x", &[("Flask", S)]);
        assert_eq!(found.map(|(_, line, _)| line), Some(3));
    }

    #[test]
    fn imports_are_top_level_statements() {
        assert!(imports("import streamlit as st\n", "streamlit"));
        assert!(imports("from streamlit import write\n", "streamlit"));
        assert!(imports("import tornado.web\n", "tornado"));
        assert!(!imports("import streamlit_extras\n", "streamlit"));
        assert!(!imports("# import streamlit\n", "streamlit"));
    }

    #[test]
    fn modules_of_files() {
        assert_eq!(module_of("app/main.py"), ("app.main".to_owned(), None));
        assert_eq!(
            module_of("src/demo/main.py"),
            ("demo.main".to_owned(), Some("src".to_owned()))
        );
        assert_eq!(
            module_of("src/demo/__init__.py"),
            ("demo".to_owned(), Some("src".to_owned()))
        );
        assert_eq!(module_of("pkg/__init__.py"), ("pkg".to_owned(), None));
    }
}
