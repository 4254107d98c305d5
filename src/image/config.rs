//! The image config: the base config, edited as JSON so fields pyslip does not know survive.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use layers::Digest;
use serde_json::{Map, Value, json};

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
pub fn created_timestamp(source_date_epoch: Option<&str>) -> Result<String> {
    let seconds = match source_date_epoch {
        None | Some("") => 0,
        Some(value) => value.trim().parse::<i64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds")
        })?,
    };
    let ts = jiff::Timestamp::from_second(seconds)
        .with_context(|| format!("SOURCE_DATE_EPOCH={seconds} is out of range"))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Build the new config from the base config bytes, the new layers' diff_ids and history lines.
///
/// The output is canonical JSON (sorted keys, no whitespace), so it is reproducible.
pub fn build_config(
    base_config: &[u8],
    settings: &ImageSettings,
    new_layers: &[(Digest, String)],
) -> Result<Vec<u8>> {
    let mut root: Value =
        serde_json::from_slice(base_config).context("the base image config is not valid JSON")?;
    let Some(top) = root.as_object_mut() else {
        bail!("the base image config is not a JSON object");
    };
    top.insert("created".into(), json!(settings.created));
    top.remove("container_config");
    top.remove("container");
    top.remove("docker_version");

    let config = object_entry(top, "config")?;
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
    config.insert("Env".into(), json!(env));
    config.insert("Cmd".into(), json!(settings.cmd));
    config.insert("Entrypoint".into(), Value::Null);
    config.insert("WorkingDir".into(), json!(settings.workdir));
    config.insert("User".into(), json!(settings.user));
    match settings.port {
        Some(port) => {
            config.insert("ExposedPorts".into(), json!({ format!("{port}/tcp"): {} }));
        }
        None => {
            config.remove("ExposedPorts");
        }
    }
    let labels = object_entry(config, "Labels")?;
    for (key, value) in &settings.labels {
        labels.insert(key.clone(), json!(value));
    }

    let rootfs = object_entry(top, "rootfs")?;
    rootfs.insert("type".into(), json!("layers"));
    let diff_ids = rootfs
        .entry("diff_ids")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .context("the base image config's rootfs.diff_ids is not a list")?;
    diff_ids.extend(new_layers.iter().map(|(d, _)| json!(d.to_string())));

    let history = top
        .entry("history")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .context("the base image config's history is not a list")?;
    for (_, created_by) in new_layers {
        history.push(json!({
            "created": settings.created,
            "created_by": created_by,
            "comment": "pyslip",
        }));
    }
    // serde_json's default map is a BTreeMap: keys come out sorted.
    Ok(serde_json::to_vec(&root)?)
}

/// `map[key]` as an object, created when missing or null.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
        .with_context(|| format!("the base image config's {key} is not an object"))
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
        assert_eq!(v["history"].as_array().map(Vec::len), Some(2));
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
        assert!(build_config(b"[1]", &settings(), &[]).is_err());
        assert!(build_config(b"{\"config\": 3}", &settings(), &[]).is_err());
        assert!(build_config(b"not json", &settings(), &[]).is_err());
    }

    #[test]
    fn created_follows_source_date_epoch() {
        assert_eq!(created_timestamp(None).expect("ts"), "1970-01-01T00:00:00Z");
        assert_eq!(
            created_timestamp(Some("1700000000")).expect("ts"),
            "2023-11-14T22:13:20Z"
        );
        assert!(created_timestamp(Some("yesterday")).is_err());
    }
}
