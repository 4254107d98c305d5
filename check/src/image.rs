//! What the check runs, read from the built image's config: the command (Entrypoint + Cmd), its
//! Env, User and WorkingDir, exactly as a container engine would start it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::CheckError;

/// The image's process as an engine would start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// Entrypoint followed by Cmd.
    pub argv: Vec<String>,
    /// Env, in order (`KEY`, `VALUE`).
    pub env: Vec<(String, String)>,
    /// Numeric user and group (`User`; empty means root).
    pub user: (u32, u32),
    /// WorkingDir (`/` when unset).
    pub workdir: String,
    /// The first `ExposedPorts` TCP port, if any.
    pub exposed_port: Option<u16>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

impl BootImage {
    /// Reads the process from OCI image config bytes.
    pub fn from_config(bytes: &[u8]) -> Result<BootImage, CheckError> {
        let file: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| CheckError::Image(format!("the image config is not valid JSON: {e}")))?;
        let config = file.config.unwrap_or_default();
        let argv: Vec<String> = config
            .entrypoint
            .unwrap_or_default()
            .into_iter()
            .chain(config.cmd.unwrap_or_default())
            .collect();
        if argv.is_empty() {
            return Err(CheckError::Image(
                "the image has neither Entrypoint nor Cmd: there is nothing to start".to_owned(),
            ));
        }
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|line| match line.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (line, String::new()),
            })
            .collect();
        let exposed_port = config
            .exposed_ports
            .unwrap_or_default()
            .keys()
            .filter_map(|k| k.strip_suffix("/tcp").or(Some(k.as_str())))
            .find_map(|p| p.parse().ok());
        let workdir = config
            .working_dir
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Ok(BootImage {
            argv,
            env,
            user: parse_user(config.user.as_deref().unwrap_or(""))?,
            workdir,
            exposed_port,
        })
    }

    /// The command for messages: the script of `sh -c SCRIPT`, else the words joined.
    pub fn shown_command(&self) -> String {
        match self.argv.as_slice() {
            [sh, c, script] if sh.ends_with("sh") && c == "-c" => script.clone(),
            words => words
                .iter()
                .map(|w| {
                    if w.is_empty() || w.contains(char::is_whitespace) {
                        format!("{w:?}")
                    } else {
                        w.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The Env with `key` set to `value` (replacing an earlier value).
    pub fn env_with(&self, key: &str, value: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            self.env.iter().filter(|(k, _)| k != key).cloned().collect();
        env.push((key.to_owned(), value.to_owned()));
        env
    }
}

/// `User` as numeric ids: empty or `root` is 0:0, `UID` is UID:UID, `UID:GID`. Names would need
/// the image's /etc/passwd; pyslip writes numeric ids.
fn parse_user(user: &str) -> Result<(u32, u32), CheckError> {
    let bad = || {
        CheckError::Image(format!(
            "the image's User {user:?} is not numeric (UID or UID:GID); the check maps ids and does not read /etc/passwd"
        ))
    };
    match user {
        "" | "root" => Ok((0, 0)),
        _ => match user.split_once(':') {
            Some((u, g)) => Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?)),
            None => {
                let uid = user.parse().map_err(|_| bad())?;
                Ok((uid, uid))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_process_from_a_pyslip_config() {
        let config = br#"{"architecture":"amd64","config":{"Cmd":["/bin/sh","-c","exec gunicorn app:app --bind \"0.0.0.0:$PORT\""],"Entrypoint":null,"Env":["PATH=/usr/local/bin:/usr/bin","PORT=8000","EMPTY="],"ExposedPorts":{"8000/tcp":{}},"User":"1000:1001","WorkingDir":"/app"}}"#;
        let image = BootImage::from_config(config).unwrap();
        assert_eq!(image.argv[0], "/bin/sh");
        assert_eq!(image.user, (1000, 1001));
        assert_eq!(image.workdir, "/app");
        assert_eq!(image.exposed_port, Some(8000));
        assert_eq!(image.env[2], ("EMPTY".to_owned(), String::new()));
        assert_eq!(
            image.shown_command(),
            "exec gunicorn app:app --bind \"0.0.0.0:$PORT\""
        );
        let env = image.env_with("PORT", "38017");
        assert_eq!(
            env.iter().filter(|(k, _)| k == "PORT").collect::<Vec<_>>(),
            [&("PORT".to_owned(), "38017".to_owned())]
        );
    }

    #[test]
    fn entrypoint_comes_first_and_users_are_numeric() {
        let config =
            br#"{"config":{"Entrypoint":["tini","--"],"Cmd":["python","my app.py"],"User":"42"}}"#;
        let image = BootImage::from_config(config).unwrap();
        assert_eq!(image.argv, ["tini", "--", "python", "my app.py"]);
        assert_eq!(image.shown_command(), "tini -- python \"my app.py\"");
        assert_eq!(image.user, (42, 42));
        assert_eq!(image.workdir, "/");
        assert_eq!(parse_user("root").unwrap(), (0, 0));
        assert!(parse_user("www-data").is_err());
        assert!(parse_user("1:x").is_err());
        assert!(BootImage::from_config(br#"{"config":{}}"#).is_err());
        assert!(BootImage::from_config(b"not json").is_err());
    }
}
