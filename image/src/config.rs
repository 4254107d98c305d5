//! The image config: the base config, edited as JSON so fields pyslip does not know survive.
//!
//! oci-spec's `ImageConfiguration` would drop fields it does not model (and reorder the rest),
//! changing digests of configs pyslip has always written byte for byte; so the base config stays
//! a `serde_json::Value` and only the history entries pyslip adds are oci-spec values.

use std::collections::BTreeMap;

use layers::Digest;
use oci_spec::image::HistoryBuilder;
use serde_json::{Map, Value};

use crate::error::ImageError;

/// What pyslip sets in the config on top of the base.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// Env pyslip adds (`K`, `V`), in order; a key the base has is replaced in place.
    pub env: Vec<(String, String)>,
    /// The exposed TCP port (web workloads only).
    pub port: Option<u16>,
    /// Cmd in exec form; the base Entrypoint is cleared so Cmd is the whole command.
    pub cmd: Vec<String>,
    /// WorkingDir.
    pub workdir: String,
    /// User (`uid:gid` or a name).
    pub user: String,
    /// Labels added to the base's labels.
    pub labels: BTreeMap<String, String>,
    /// `created` for the config and history (RFC 3339).
    pub created: String,
}

/// The RFC 3339 time for `SOURCE_DATE_EPOCH` (or the Unix epoch when unset), so the same inputs
/// give the same config bytes.
pub fn created_timestamp(source_date_epoch: Option<&str>) -> Result<String, ImageError> {
    let bad = || ImageError::SourceDateEpoch {
        value: source_date_epoch.unwrap_or_default().to_owned(),
    };
    let seconds = match source_date_epoch {
        None | Some("") => 0,
        Some(value) => value.trim().parse::<i64>().map_err(|_| bad())?,
    };
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| bad())?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn base_error(problem: &str) -> ImageError {
    ImageError::BaseConfig {
        problem: problem.to_owned(),
    }
}

/// Build the new config from the base config bytes, the new layers' diff_ids and history lines.
///
/// The output is canonical JSON (sorted keys, no whitespace), so it is reproducible.
pub fn build_config(
    base_config: &[u8],
    settings: &ImageSettings,
    new_layers: &[(Digest, String)],
) -> Result<Vec<u8>, ImageError> {
    let mut root: Value =
        serde_json::from_slice(base_config).map_err(|_| base_error("is not valid JSON"))?;
    let top = root
        .as_object_mut()
        .ok_or_else(|| base_error("is not a JSON object"))?;
    top.insert("created".into(), Value::from(settings.created.as_str()));
    for gone in ["container_config", "container", "docker_version"] {
        top.remove(gone);
    }
    edit_run_config(object_entry(top, "config")?, settings)?;

    let rootfs = object_entry(top, "rootfs")?;
    rootfs.insert("type".into(), Value::from("layers"));
    let diff_ids = list_entry(rootfs, "diff_ids", "rootfs.diff_ids")?;
    diff_ids.extend(new_layers.iter().map(|(d, _)| Value::from(d.to_string())));

    let history = list_entry(top, "history", "history")?;
    for (_, created_by) in new_layers {
        let entry = HistoryBuilder::default()
            .created(settings.created.clone())
            .created_by(created_by.clone())
            .comment("pyslip")
            .build()
            .map_err(|source| ImageError::Spec {
                what: "history entry".into(),
                source,
            })?;
        history.push(serde_json::to_value(entry).map_err(ImageError::Serialize)?);
    }
    // serde_json's default map is a BTreeMap: keys come out sorted.
    serde_json::to_vec(&root).map_err(ImageError::Serialize)
}

/// Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts and Labels of the run config.
fn edit_run_config(
    config: &mut Map<String, Value>,
    settings: &ImageSettings,
) -> Result<(), ImageError> {
    let mut env: Vec<String> = string_list(config.get("Env"));
    for (key, value) in &settings.env {
        let line = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(existing) => *existing = line,
            None => env.push(line),
        }
    }
    config.insert("Env".into(), Value::from(env));
    config.insert("Cmd".into(), Value::from(settings.cmd.clone()));
    config.insert("Entrypoint".into(), Value::Null);
    config.insert("WorkingDir".into(), Value::from(settings.workdir.as_str()));
    config.insert("User".into(), Value::from(settings.user.as_str()));
    match settings.port {
        Some(port) => {
            let ports = Map::from_iter([(format!("{port}/tcp"), Value::Object(Map::new()))]);
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        None => {
            config.remove("ExposedPorts");
        }
    }
    let labels = object_entry(config, "Labels")?;
    for (key, value) in &settings.labels {
        labels.insert(key.clone(), Value::from(value.as_str()));
    }
    Ok(())
}

/// `map[key]` as an object, created when missing or null.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, ImageError> {
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| base_error(&format!("has a {key} that is not an object")))
}

/// `map[key]` as a list, created when missing.
fn list_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    shown: &str,
) -> Result<&'a mut Vec<Value>, ImageError> {
    map.entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| base_error(&format!("has a {shown} that is not a list")))
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> ImageSettings {
        ImageSettings {
            env: vec![
                ("PYTHONUNBUFFERED".into(), "1".into()),
                ("PORT".into(), "8000".into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            port: Some(8000),
            cmd: vec!["python".into(), "main.py".into()],
            workdir: "/app".into(),
            user: "1000:1000".into(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            created: "1970-01-01T00:00:00Z".into(),
        }
    }

    const BASE: &str = r#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
        "config":{"Env":["PATH=/usr/local/bin:/usr/bin","LANG=en_US"],"Cmd":["python3"],"Entrypoint":["tini"]},
        "rootfs":{"type":"layers","diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]},
        "history":[{"created_by":"base"}],"x-unknown":{"kept":true}}"#;

    #[test]
    fn edits_base_config_and_keeps_unknown_fields() {
        let layer = Digest::of(b"layer");
        let out = build_config(
            BASE.as_bytes(),
            &settings(),
            &[(layer.clone(), "app".into())],
        )
        .expect("config");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            v["config"]["Env"],
            json!([
                "PATH=/usr/local/bin:/usr/bin",
                "LANG=C.UTF-8",
                "PYTHONUNBUFFERED=1",
                "PORT=8000"
            ])
        );
        assert_eq!(v["config"]["Cmd"], json!(["python", "main.py"]));
        assert_eq!(v["config"]["Entrypoint"], Value::Null);
        assert_eq!(v["config"]["ExposedPorts"], json!({"8000/tcp": {}}));
        assert_eq!(v["config"]["Labels"], json!({"a": "b"}));
        assert_eq!(v["rootfs"]["diff_ids"][1], json!(layer.to_string()));
        assert_eq!(
            v["history"][1],
            json!({"created": "1970-01-01T00:00:00Z", "created_by": "app", "comment": "pyslip"})
        );
        assert_eq!(v["created"], json!("1970-01-01T00:00:00Z"));
        assert_eq!(v["x-unknown"], json!({"kept": true}));
    }

    #[test]
    fn worker_has_no_exposed_ports_and_output_is_stable() {
        let mut s = settings();
        s.port = None;
        let base = BASE.replace(r#""Cmd""#, r#""ExposedPorts":{"1/tcp":{}},"Cmd""#);
        let a = build_config(base.as_bytes(), &s, &[]).expect("config");
        let b = build_config(base.as_bytes(), &s, &[]).expect("config");
        assert_eq!(a, b);
        let v: Value = serde_json::from_slice(&a).expect("json");
        assert!(v["config"].get("ExposedPorts").is_none());
    }

    #[test]
    fn rejects_configs_that_are_not_objects() {
        for bad in [
            &b"[1]"[..],
            b"{\"config\": 3}",
            b"not json",
            b"{\"history\": {}}",
        ] {
            let err = build_config(bad, &settings(), &[(Digest::of(b"x"), "x".into())]);
            assert!(
                matches!(err, Err(ImageError::BaseConfig { .. })),
                "{}: {err:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn created_follows_source_date_epoch() {
        assert_eq!(created_timestamp(None).expect("ts"), "1970-01-01T00:00:00Z");
        assert_eq!(
            created_timestamp(Some("1700000000")).expect("ts"),
            "2023-11-14T22:13:20Z"
        );
        let err = created_timestamp(Some("yesterday")).unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
        assert!(err.hint().is_some());
    }
}
