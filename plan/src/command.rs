//! Start commands: the exact image `Cmd` for a chosen server, from one table of server command
//! lines.
//!
//! Every generated server command is a `/bin/sh -c` script so that `$PORT` and the worker count
//! are read when the container starts, and ends in `exec` so the server is PID 1 and gets signals.

use crate::model::{AppTarget, Server};

/// Workers: `2×CPUs+1` at start, at most 12, unless `WEB_CONCURRENCY` is set.
const WORKERS_PRELUDE: &str = "w=$(( $(nproc) * 2 + 1 )); [ \"$w\" -le 12 ] || w=12; ";
const WORKERS: &str = "\"${WEB_CONCURRENCY:-$w}\"";

/// How a server is given an app factory (`def create_app()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factory {
    /// The target is a call expression the server evaluates: `'mod:create_app()'`.
    Call,
    /// The target names the factory and a flag says so: `mod:create_app --factory`.
    Flag(&'static str),
    /// An option takes the factory instead of the target: `--call mod:create_app`.
    Option(&'static str),
    /// The server cannot call a factory.
    Unsupported,
}

/// One server's command line.
#[derive(Debug)]
pub struct ServerLine {
    /// The server.
    pub server: Server,
    /// The distribution that provides it (PEP 503 name), checked against the installed set.
    pub dist: &'static str,
    /// The command after `exec`: `{target}` is the quoted `module:variable`, `{path}` the
    /// app-directory option (or nothing), `{file}` the app file, `{workers}` the worker count,
    /// `{extra}` framework-specific options.
    pub template: &'static str,
    /// The app-directory option with `{dir}`; `None` runs the command from that directory (`cd`).
    pub path: Option<&'static str>,
    /// How an app factory is given.
    pub factory: Factory,
    /// A development server (the plan warns when it is chosen).
    pub dev: bool,
    /// How it is shown in messages.
    pub label: &'static str,
}

const fn line(
    server: Server,
    dist: &'static str,
    template: &'static str,
    path: Option<&'static str>,
    factory: Factory,
    label: &'static str,
) -> ServerLine {
    ServerLine {
        server,
        dist,
        template,
        path,
        factory,
        dev: false,
        label,
    }
}

/// Every server pyslip can start, and how.
pub const SERVERS: &[ServerLine] = &[
    line(
        Server::Gunicorn,
        "gunicorn",
        "gunicorn {target}{path}{extra} --bind \"0.0.0.0:$PORT\" --workers {workers}",
        Some(" --pythonpath {dir}"),
        Factory::Call,
        "gunicorn",
    ),
    line(
        Server::Uvicorn,
        "uvicorn",
        "uvicorn {target}{path} --host 0.0.0.0 --port \"$PORT\" --workers {workers}",
        Some(" --app-dir {dir}"),
        Factory::Flag("--factory"),
        "uvicorn",
    ),
    line(
        Server::FastapiCli,
        "fastapi-cli",
        "fastapi run {file} --app {variable} --host 0.0.0.0 --port \"$PORT\" --workers {workers}",
        Some(""),
        Factory::Unsupported,
        "`fastapi run`",
    ),
    line(
        Server::Hypercorn,
        "hypercorn",
        "hypercorn {target} --bind \"0.0.0.0:$PORT\" --workers {workers}",
        None,
        Factory::Call,
        "hypercorn",
    ),
    line(
        Server::Daphne,
        "daphne",
        "daphne -b 0.0.0.0 -p \"$PORT\" {target}",
        None,
        Factory::Unsupported,
        "daphne",
    ),
    line(
        Server::Uwsgi,
        "uwsgi",
        "uwsgi --http-socket \"0.0.0.0:$PORT\" --master --die-on-term --need-app --processes {workers}{path} --module {target}",
        Some(" --pythonpath {dir}"),
        Factory::Unsupported,
        "uwsgi",
    ),
    line(
        Server::Waitress,
        "waitress",
        "waitress-serve --listen \"0.0.0.0:$PORT\" {target}",
        None,
        Factory::Option("--call"),
        "waitress",
    ),
    line(
        Server::Sanic,
        "sanic",
        "sanic {target} --host 0.0.0.0 --port \"$PORT\" --workers {workers}",
        None,
        Factory::Flag("--factory"),
        "sanic",
    ),
    line(
        Server::Aiohttp,
        "aiohttp",
        "python -c {launcher}",
        None,
        Factory::Call,
        "aiohttp's web.run_app",
    ),
    line(
        Server::Streamlit,
        "streamlit",
        "streamlit run {file} --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true",
        Some(""),
        Factory::Unsupported,
        "`streamlit run`",
    ),
    ServerLine {
        dev: true,
        ..line(
            Server::FlaskRun,
            "flask",
            "flask --app {target} run --host 0.0.0.0 --port \"$PORT\"",
            None,
            Factory::Call,
            "`flask run`, Flask's development server",
        )
    },
    ServerLine {
        dev: true,
        ..line(
            Server::BottleRun,
            "bottle",
            "python -m bottle --bind \"0.0.0.0:$PORT\" {target}",
            None,
            Factory::Call,
            "`python -m bottle`, Bottle's development server",
        )
    },
    ServerLine {
        dev: true,
        ..line(
            Server::DjangoRunserver,
            "django",
            "python manage.py runserver \"0.0.0.0:$PORT\"",
            None,
            Factory::Unsupported,
            "Django's development server",
        )
    },
];

/// The table row of `server` (`python <file>` has none: it is exec form).
pub fn line_of(server: Server) -> Option<&'static ServerLine> {
    SERVERS.iter().find(|l| l.server == server)
}

/// Whether `server` can serve `app` (a factory needs a server that can call it).
pub fn can_serve(server: Server, app: &AppTarget) -> bool {
    !app.variable.ends_with("()")
        || line_of(server).is_some_and(|l| l.factory != Factory::Unsupported)
}

/// Wraps a user command string as a Procfile entry runs: `/bin/sh -c 'exec <cmd>'`.
/// A command that chains several commands (`&&`, `;`, `|`) is run as written: prefixing `exec`
/// would change its meaning. Returns the Cmd and whether `exec` was added.
pub fn shell(cmd: &str) -> (Vec<String>, bool) {
    let cmd = cmd.trim();
    let compound = ["&&", "||", ";", "|", "\n", "&"]
        .iter()
        .any(|op| cmd.contains(op));
    if compound || cmd.starts_with("exec ") {
        return (
            vec!["/bin/sh".into(), "-c".into(), cmd.to_owned()],
            cmd.starts_with("exec "),
        );
    }
    (
        vec!["/bin/sh".into(), "-c".into(), format!("exec {cmd}")],
        true,
    )
}

fn quote(text: &str) -> String {
    shlex::try_quote(text).map_or_else(|_| format!("'{text}'"), |q| q.into_owned())
}

/// `python <file>` in exec form (the app reads `PORT` itself).
pub fn python_file(file: &str) -> Vec<String> {
    vec!["python".into(), file.to_owned()]
}

/// Options that go with a server for one framework (e.g. aiohttp's gunicorn worker class).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// Appended after the target of gunicorn.
    pub gunicorn: &'static str,
}

/// The command for an app served by `server`. `cd` runs it from the app directory whatever
/// the server supports (Django: its project folder is where manage.py is).
pub fn for_app(server: Server, app: &AppTarget, extra: Extra, cd: bool) -> Vec<String> {
    let Some(row) = line_of(server) else {
        return python_file(&app.file);
    };
    let dir = app.app_dir.as_deref().filter(|d| !d.is_empty());
    let (target, path) = match (row.path, dir, cd) {
        (Some(option), Some(d), false) => {
            (target(row.factory, app), option.replace("{dir}", &quote(d)))
        }
        _ => (target(row.factory, app), String::new()),
    };
    let cd = match (row.path, dir, cd) {
        (Some(_), _, false) | (_, None, _) => String::new(),
        (_, Some(d), _) => format!("cd {} && ", quote(d)),
    };
    let extra = if server == Server::Gunicorn {
        extra.gunicorn
    } else {
        ""
    };
    let body = row
        .template
        .replace("{target}", &target)
        .replace("{path}", &path)
        .replace("{extra}", extra)
        .replace("{file}", &quote(&app.file))
        .replace("{variable}", &app.variable)
        .replace("{launcher}", &quote(&aiohttp_launcher(app)))
        .replace("{workers}", WORKERS);
    let prelude = if row.template.contains("{workers}") {
        WORKERS_PRELUDE
    } else {
        ""
    };
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("{prelude}{cd}exec {body}"),
    ]
}

/// The app as the server's command line names it.
fn target(factory: Factory, app: &AppTarget) -> String {
    let plain = format!("{}:{}", app.module, app.variable);
    let Some(function) = app.variable.strip_suffix("()") else {
        return quote(&plain);
    };
    match factory {
        Factory::Call | Factory::Unsupported => quote(&plain),
        Factory::Flag(flag) => format!("{} {flag}", quote(&format!("{}:{function}", app.module))),
        Factory::Option(option) => {
            format!("{option} {}", quote(&format!("{}:{function}", app.module)))
        }
    }
}

/// aiohttp has no command that serves an app object, so a one-line launcher runs
/// `web.run_app` on it (a factory may return the app or a coroutine; run_app takes both).
fn aiohttp_launcher(app: &AppTarget) -> String {
    let object = match app.variable.strip_suffix("()") {
        Some(function) => format!("m.{function}()"),
        None => format!("m.{}", app.variable),
    };
    format!(
        "import importlib, os; from aiohttp import web; m = importlib.import_module({:?}); web.run_app({object}, host=\"0.0.0.0\", port=int(os.environ[\"PORT\"]))",
        app.module
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(module: &str, variable: &str, dir: Option<&str>) -> AppTarget {
        AppTarget {
            file: format!("{}.py", module.replace('.', "/")),
            module: module.into(),
            variable: variable.into(),
            line: None,
            app_dir: dir.map(str::to_owned),
        }
    }

    fn script(server: Server, app: &AppTarget) -> String {
        for_app(server, app, Extra::default(), false)
            .get(2)
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn user_commands_get_exec_unless_compound() {
        assert_eq!(
            shell("gunicorn app:app").0,
            vec!["/bin/sh", "-c", "exec gunicorn app:app"]
        );
        assert_eq!(shell("exec python x.py").0[2], "exec python x.py");
        let (cmd, exec) = shell("cd web && gunicorn app:app");
        assert_eq!(cmd[2], "cd web && gunicorn app:app");
        assert!(!exec);
    }

    #[test]
    fn generated_commands_read_port_at_start() {
        let cmd = for_app(
            Server::Uvicorn,
            &app("main", "app", None),
            Extra::default(),
            false,
        );
        assert_eq!(cmd.first().map(String::as_str), Some("/bin/sh"));
        let script = cmd.get(2).cloned().unwrap_or_default();
        assert!(
            script.contains("exec uvicorn main:app --host 0.0.0.0 --port \"$PORT\""),
            "{script}"
        );
        assert!(script.contains("WEB_CONCURRENCY"), "{script}");
    }

    #[test]
    fn app_dirs_are_options_where_the_server_has_one_else_cd() {
        let src = app("demo", "app", Some("src"));
        assert!(
            script(Server::Gunicorn, &src)
                .contains("exec gunicorn demo:app --pythonpath src --bind")
        );
        assert!(
            script(Server::Uvicorn, &src).contains("exec uvicorn demo:app --app-dir src --host")
        );
        assert!(script(Server::Hypercorn, &src).contains("cd src && exec hypercorn demo:app"));
        let django = for_app(Server::Gunicorn, &src, Extra::default(), true);
        assert!(
            django[2].contains("cd src && exec gunicorn demo:app --bind"),
            "{}",
            django[2]
        );
    }

    #[test]
    fn factories_use_each_servers_syntax() {
        let f = app("demo", "create_app()", None);
        assert!(script(Server::Gunicorn, &f).contains("exec gunicorn 'demo:create_app()' --bind"));
        assert!(
            script(Server::Uvicorn, &f).contains("exec uvicorn demo:create_app --factory --host")
        );
        assert!(
            script(Server::Waitress, &f)
                .contains("waitress-serve --listen \"0.0.0.0:$PORT\" --call demo:create_app")
        );
        assert!(script(Server::Sanic, &f).contains("exec sanic demo:create_app --factory --host"));
        assert!(!can_serve(Server::Daphne, &f));
        assert!(can_serve(Server::Daphne, &app("demo", "app", None)));
    }

    #[test]
    fn streamlit_aiohttp_and_worker_classes() {
        let s = script(Server::Streamlit, &app("streamlit_app", "app", None));
        assert_eq!(
            s,
            "exec streamlit run streamlit_app.py --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true"
        );
        let a = script(Server::Aiohttp, &app("server", "app", None));
        assert!(a.starts_with("exec python -c 'import importlib, os; from aiohttp import web; m = importlib.import_module(\"server\"); web.run_app(m.app, "), "{a}");
        let g = for_app(
            Server::Gunicorn,
            &app("server", "app", None),
            Extra {
                gunicorn: " --worker-class aiohttp.GunicornWebWorker",
            },
            false,
        );
        assert!(
            g[2].contains(
                "exec gunicorn server:app --worker-class aiohttp.GunicornWebWorker --bind"
            ),
            "{}",
            g[2]
        );
    }
}
