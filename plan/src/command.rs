//! Start commands: the server chosen from the installed set and the exact image `Cmd`.
//!
//! Every generated server command is a `/bin/sh -c` script so that `$PORT` and the worker count
//! are read when the container starts, and ends in `exec` so the server is PID 1 and gets signals.

use crate::model::{AppTarget, Server};

/// Workers: `2×CPUs+1` at start, at most 12, unless `WEB_CONCURRENCY` is set.
const WORKERS_PRELUDE: &str = "w=$(( $(nproc) * 2 + 1 )); [ \"$w\" -le 12 ] || w=12; ";
const WORKERS: &str = "\"${WEB_CONCURRENCY:-$w}\"";

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

fn script(cd: Option<&str>, body: String, workers: bool) -> Vec<String> {
    let cd = cd
        .filter(|d| !d.is_empty())
        .map(|d| format!("cd {} && ", quote(d)))
        .unwrap_or_default();
    let prelude = if workers { WORKERS_PRELUDE } else { "" };
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("{prelude}{cd}exec {body}"),
    ]
}

/// `python <file>` in exec form (the app reads `PORT` itself).
pub fn python_file(file: &str) -> Vec<String> {
    vec!["python".into(), file.to_owned()]
}

/// The command for a Flask/FastAPI-style app with `server`.
pub fn for_app(server: Server, app: &AppTarget) -> Vec<String> {
    let target = format!("{}:{}", app.module, app.variable);
    let dir = app.app_dir.as_deref();
    let factory = app.variable.strip_suffix("()");
    match server {
        Server::Gunicorn => {
            let path = dir
                .map(|d| format!(" --pythonpath {}", quote(d)))
                .unwrap_or_default();
            script(
                None,
                format!(
                    "gunicorn {}{path} --bind \"0.0.0.0:$PORT\" --workers {WORKERS}",
                    quote(&target)
                ),
                true,
            )
        }
        Server::Uvicorn => {
            let path = dir
                .map(|d| format!(" --app-dir {}", quote(d)))
                .unwrap_or_default();
            let target = match factory {
                Some(f) => format!("{}:{f} --factory", app.module),
                None => target,
            };
            script(
                None,
                format!(
                    "uvicorn {target}{path} --host 0.0.0.0 --port \"$PORT\" --workers {WORKERS}"
                ),
                true,
            )
        }
        Server::FastapiCli => script(
            None,
            format!(
                "fastapi run {} --app {} --host 0.0.0.0 --port \"$PORT\" --workers {WORKERS}",
                quote(&app.file),
                app.variable
            ),
            true,
        ),
        Server::Hypercorn => script(
            dir,
            format!(
                "hypercorn {} --bind \"0.0.0.0:$PORT\" --workers {WORKERS}",
                quote(&target)
            ),
            true,
        ),
        Server::Waitress => {
            let target = match factory {
                Some(f) => format!("--call {}:{f}", app.module),
                None => target,
            };
            script(
                dir,
                format!("waitress-serve --listen \"0.0.0.0:$PORT\" {target}"),
                false,
            )
        }
        Server::Uwsgi => {
            let path = dir
                .map(|d| format!(" --pythonpath {}", quote(d)))
                .unwrap_or_default();
            script(
                None,
                format!(
                    "uwsgi --http-socket \"0.0.0.0:$PORT\" --master --die-on-term --need-app --processes {WORKERS}{path} --module {}",
                    quote(&target)
                ),
                true,
            )
        }
        Server::FlaskRun => script(
            dir,
            format!(
                "flask --app {} run --host 0.0.0.0 --port \"$PORT\"",
                quote(&target)
            ),
            false,
        ),
        Server::Daphne => script(
            dir,
            format!("daphne -b 0.0.0.0 -p \"$PORT\" {}", quote(&target)),
            false,
        ),
        Server::DjangoRunserver | Server::Python => python_file(&app.file),
    }
}

/// The command for a Django project run from `base_dir` (the folder holding manage.py).
pub fn for_django(server: Server, base_dir: &str, module: &str, variable: &str) -> Vec<String> {
    let dir = Some(base_dir);
    let target = format!("{module}:{variable}");
    match server {
        Server::Gunicorn => script(
            dir,
            format!(
                "gunicorn {} --bind \"0.0.0.0:$PORT\" --workers {WORKERS}",
                quote(&target)
            ),
            true,
        ),
        Server::Uvicorn => script(
            dir,
            format!(
                "uvicorn {} --host 0.0.0.0 --port \"$PORT\" --workers {WORKERS}",
                quote(&target)
            ),
            true,
        ),
        Server::Hypercorn => script(
            dir,
            format!(
                "hypercorn {} --bind \"0.0.0.0:$PORT\" --workers {WORKERS}",
                quote(&target)
            ),
            true,
        ),
        Server::Daphne => script(
            dir,
            format!("daphne -b 0.0.0.0 -p \"$PORT\" {}", quote(&target)),
            false,
        ),
        Server::Uwsgi => script(
            dir,
            format!(
                "uwsgi --http-socket \"0.0.0.0:$PORT\" --master --die-on-term --need-app --processes {WORKERS} --module {}",
                quote(&target)
            ),
            true,
        ),
        _ => script(
            dir,
            "python manage.py runserver \"0.0.0.0:$PORT\"".to_owned(),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let app = AppTarget {
            file: "main.py".into(),
            module: "main".into(),
            variable: "app".into(),
            app_dir: None,
        };
        let cmd = for_app(Server::Uvicorn, &app);
        assert_eq!(cmd.first().map(String::as_str), Some("/bin/sh"));
        let script = cmd.get(2).cloned().unwrap_or_default();
        assert!(
            script.contains("exec uvicorn main:app --host 0.0.0.0 --port \"$PORT\""),
            "{script}"
        );
        assert!(script.contains("WEB_CONCURRENCY"), "{script}");
    }
}
