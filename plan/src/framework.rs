//! Framework detection from the installed set, and the server and start command it implies.

use std::collections::BTreeSet;

use crate::app;
use crate::command;
use crate::django::{self, DjangoProject};
use crate::error::PlanError;
use crate::model::{AppTarget, Decision, Framework, Ignored, Server, Source};
use crate::project::Project;

/// What detection found.
#[derive(Debug)]
pub struct Detected {
    /// The framework and why.
    pub framework: Decision<Framework>,
    /// The app the server imports.
    pub app: Option<AppTarget>,
    /// The server and why.
    pub server: Option<Decision<Server>>,
    /// The start command, when one could be built.
    pub cmd: Option<Vec<String>>,
    /// The framework's default port.
    pub port: u16,
    /// Django details.
    pub django: Option<DjangoProject>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Frameworks seen and not used.
    pub ignored: Vec<Ignored>,
    /// The framework needs a server that is not installed (an error unless a command is given).
    pub missing_server: Option<PlanError>,
}

/// What detection looks for (for the "nothing detected" error).
pub fn looked_for() -> Vec<String> {
    vec![
        "a Procfile `web:` line".to_owned(),
        "django (with manage.py), fastapi, flask or tornado among the dependencies".to_owned(),
        "an app file (main.py, app.py, application.py, app/main.py, src/<pkg>/main.py, wsgi.py, asgi.py)".to_owned(),
    ]
}

fn first_installed(deps: &BTreeSet<String>, order: &[(Server, &str)]) -> Option<Server> {
    order
        .iter()
        .find(|(_, name)| deps.contains(*name))
        .map(|(server, _)| *server)
}

/// Detects the framework. `deps` are the names that will be installed, decided by `deps_file`.
pub fn detect(
    project: &Project,
    deps: &BTreeSet<String>,
    deps_file: &str,
) -> Result<Option<Detected>, PlanError> {
    let mut warnings = Vec::new();
    let mut found: Vec<(Framework, &str)> = Vec::new();
    let manage_py = django::find_manage_py(project)?;
    if deps.contains("django") {
        if manage_py.is_some() {
            found.push((Framework::Django, "django"));
        } else {
            warnings.push("django is a dependency but there is no manage.py (root or one level down); not treated as a Django app".to_owned());
        }
    }
    for (framework, name) in [
        (Framework::Fastapi, "fastapi"),
        (Framework::Flask, "flask"),
        (Framework::Tornado, "tornado"),
    ] {
        if deps.contains(name) {
            found.push((framework, name));
        }
    }
    let generic_file = app::first_existing(project, app::GENERIC_FILES);
    let Some(&(framework, dep)) = found.first() else {
        return Ok(generic_file.map(|file| Detected {
            framework: Decision::new(
                Framework::Generic,
                Source::detected(&file, "app file, no web framework among the dependencies"),
            ),
            app: None,
            server: Some(Decision::new(Server::Python, Source::Default)),
            cmd: Some(command::python_file(&file)),
            port: 8000,
            django: None,
            warnings,
            ignored: Vec::new(),
            missing_server: None,
        }));
    };
    let ignored = found
        .iter()
        .skip(1)
        .map(|(_, other)| Ignored {
            what: format!("{other} dependency"),
            reason: format!("{dep} wins"),
        })
        .collect();
    let installed = |server: Server, name: &str| {
        Decision::new(
            server,
            Source::detected(deps_file, format!("{name} is installed")),
        )
    };
    let mut detected = Detected {
        framework: Decision::new(
            framework,
            Source::detected(deps_file, format!("{dep} dependency")),
        ),
        app: None,
        server: None,
        cmd: None,
        port: 8000,
        django: None,
        warnings,
        ignored,
        missing_server: None,
    };
    match framework {
        Framework::Django => {
            let manage_py = manage_py.unwrap_or_default();
            detected.framework.source = Source::detected(
                &manage_py,
                format!("manage.py and the django dependency in {deps_file}"),
            );
            let project_info = django::inspect(project, &manage_py)?;
            let mut order: Vec<(Server, &str)> = Vec::new();
            if project_info.wsgi.is_some() {
                order.push((Server::Gunicorn, "gunicorn"));
            }
            if project_info.asgi.is_some() {
                order.extend([
                    (Server::Uvicorn, "uvicorn"),
                    (Server::Hypercorn, "hypercorn"),
                    (Server::Daphne, "daphne"),
                ]);
            }
            if project_info.wsgi.is_some() {
                order.push((Server::Uwsgi, "uwsgi"));
            }
            let server = first_installed(deps, &order);
            let (module, variable) = match server {
                Some(Server::Uvicorn | Server::Hypercorn | Server::Daphne) => {
                    project_info.asgi.clone()
                }
                _ => project_info.wsgi.clone(),
            }
            .unwrap_or_default();
            match server {
                Some(server) => {
                    let name = order
                        .iter()
                        .find(|(s, _)| *s == server)
                        .map_or("", |(_, n)| n);
                    detected.server = Some(installed(server, name));
                    detected.cmd = Some(command::for_django(
                        server,
                        &project_info.base_dir,
                        &module,
                        &variable,
                    ));
                }
                None => {
                    detected.warnings.push("no production server (gunicorn, uvicorn, hypercorn, daphne, uwsgi) is installed; running Django's development server — add gunicorn to the dependencies".to_owned());
                    detected.server = Some(Decision::new(Server::DjangoRunserver, Source::Default));
                    detected.cmd = Some(command::for_django(
                        Server::DjangoRunserver,
                        &project_info.base_dir,
                        "",
                        "",
                    ));
                }
            }
            if !module.is_empty() {
                let file = format!("{}.py", module.replace('.', "/"));
                let file = if project_info.base_dir.is_empty() {
                    file
                } else {
                    format!("{}/{file}", project_info.base_dir)
                };
                let app_dir =
                    (!project_info.base_dir.is_empty()).then(|| project_info.base_dir.clone());
                detected.app = Some(AppTarget {
                    file,
                    module,
                    variable,
                    app_dir,
                });
            }
            detected.django = Some(project_info);
        }
        Framework::Fastapi | Framework::Flask => {
            let (constructor, order, port): (&str, &[(Server, &str)], u16) =
                if framework == Framework::Fastapi {
                    (
                        "FastAPI",
                        &[
                            (Server::Uvicorn, "uvicorn"),
                            (Server::FastapiCli, "fastapi-cli"),
                            (Server::Hypercorn, "hypercorn"),
                        ],
                        8000,
                    )
                } else {
                    (
                        "Flask",
                        &[
                            (Server::Gunicorn, "gunicorn"),
                            (Server::Waitress, "waitress"),
                            (Server::Uwsgi, "uwsgi"),
                        ],
                        5000,
                    )
                };
            detected.port = port;
            let Some(target) = app::find(project, constructor)? else {
                detected
                    .warnings
                    .push(format!("{dep} is a dependency but no app file was found"));
                return Ok(Some(detected));
            };
            let server = match first_installed(deps, order) {
                Some(server) => {
                    let name = order
                        .iter()
                        .find(|(s, _)| *s == server)
                        .map_or("", |(_, n)| n);
                    installed(server, name)
                }
                None if framework == Framework::Flask => {
                    detected.warnings.push("no production server (gunicorn, waitress, uwsgi) is installed; running `flask run`, Flask's development server — add gunicorn to the dependencies".to_owned());
                    Decision::new(Server::FlaskRun, Source::Default)
                }
                None => {
                    detected.missing_server = Some(PlanError::NoServer {
                        framework: "FastAPI".to_owned(),
                        servers: order.iter().map(|(_, n)| (*n).to_owned()).collect(),
                    });
                    detected.app = Some(target);
                    return Ok(Some(detected));
                }
            };
            detected.cmd = Some(command::for_app(server.value, &target));
            detected.server = Some(server);
            detected.app = Some(target);
        }
        Framework::Tornado => {
            detected.port = 8888;
            let file = app::candidates(project)?.into_iter().next();
            match file {
                Some(file) => {
                    detected.cmd = Some(command::python_file(&file));
                    detected.server = Some(Decision::new(Server::Python, Source::Default));
                }
                None => detected
                    .warnings
                    .push("tornado is a dependency but no app file was found".to_owned()),
            }
        }
        Framework::Generic | Framework::None => {}
    }
    Ok(Some(detected))
}
