//! A Python the pins can install: when the project does not pin Python and its exactly pinned or
//! locked packages have no wheels for the planned one, the build asks the package index which
//! Pythons they do have wheels for and re-plans with the newest that suits them all, saying why
//! (`python 3.13 [requirements.txt:3: numpy==2.2.6 has no wheels for 3.14]`).
//!
//! The plan itself stays pure; this runs at build time (and for `pyslip plan --online`).
//! Answers are kept in `<cache>/python-v1/`, keyed by the index, platform, candidates and pins:
//! "keep the planned Python" for good (wheels are not withdrawn), a change for a day (a project
//! may upload wheels for a newer Python later).

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use pyslip_install::{InstallError, WheelAdvice};
use pyslip_plan::{BuildPlan, Decision, ExactPin, Overrides, Source};
use pyslip_registry::{Client, Platform};
use sha2::{Digest as _, Sha256};

use crate::cache::Cache;
use crate::wheels::{self, Index, Wheels};

/// Index requests in flight at once.
const PARALLEL: usize = 8;
/// How long a remembered change of Python is trusted.
const CHANGE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Cache folder of the answers.
use pyslip_lifecycle::folders::PYTHON as CACHE_DIR;

/// The build's Python decision, for the output.
pub struct Refined {
    /// The plan to build (re-planned when the Python changed).
    pub plan: BuildPlan,
    /// Why the Python changed, when it did.
    pub changed: Option<String>,
}

/// `plan`, re-planned with an older Python when the exact pins have no wheels for its Python.
/// Index trouble never fails the build: the planned Python is kept with a warning.
pub async fn refine(
    client: &Client,
    cache: &Cache,
    dir: &Path,
    overrides: &Overrides,
    plan: BuildPlan,
    platform: &Platform,
) -> Result<(Refined, Vec<String>)> {
    let keep = |plan| Refined {
        plan,
        changed: None,
    };
    if plan.python_candidates.len() < 2
        || plan.python_candidates.first() != Some(&plan.python.value)
    {
        return Ok((keep(plan), Vec::new()));
    }
    let pins = pyslip_plan::exact_pins(dir, &plan)?;
    if pins.is_empty() {
        return Ok((keep(plan), Vec::new()));
    }
    let index = Index::from_env(|k| std::env::var(k).ok())?;
    let key = cache_key(&index, platform, &plan.python_candidates, &pins);
    let answer = match remembered(cache, &key) {
        Some(answer) => answer,
        None => match choose(client, &index, platform, &plan.python_candidates, &pins).await {
            Ok(answer) => {
                remember(cache, &key, &answer);
                answer
            }
            Err(err) => {
                let warning = format!(
                    "could not check which Pythons the pinned packages have wheels for ({err:#}); building with python {}",
                    plan.python.value
                );
                return Ok((keep(plan), vec![warning]));
            }
        },
    };
    let Some(choice) = answer else {
        return Ok((keep(plan), Vec::new()));
    };
    let choice_python = choice.python.clone();
    let overrides = Overrides {
        python_refined: Some(Decision::new(
            choice.python.clone(),
            Source::Index {
                file: choice.file,
                line: choice.line,
                detail: choice.detail,
            },
        )),
        ..overrides.clone()
    };
    let plan = pyslip_plan::plan(dir, &overrides)?;
    let changed = (plan.python.value == choice_python).then(|| {
        format!(
            "python  {} [{}]",
            plan.python.value,
            pyslip_plan::describe_source(&plan.python.source)
        )
    });
    Ok((Refined { plan, changed }, Vec::new()))
}

/// Adds the package index's view to a failed install of a package that had no wheel and needed
/// a compiler: the newest Python its pinned version has wheels for. Any trouble asking leaves
/// the error as it was.
pub async fn explain_failure(
    client: &Client,
    dir: &Path,
    plan: &BuildPlan,
    platform: &Platform,
    mut err: anyhow::Error,
) -> anyhow::Error {
    let Some((name, version)) = err
        .downcast_ref::<InstallError>()
        .and_then(InstallError::missing_wheel)
    else {
        return err;
    };
    let Some(name) = pyslip_plan::normalize_name(&name) else {
        return err;
    };
    let version = version.or_else(|| {
        pyslip_plan::exact_pins(dir, plan)
            .ok()?
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.version)
    });
    let Some(version) = version else {
        return err;
    };
    let minors: Vec<u8> = pyslip_plan::supported_pythons()
        .iter()
        .filter_map(|v| minor(v))
        .collect();
    let Ok(index) = Index::from_env(|k| std::env::var(k).ok()) else {
        return err;
    };
    if let Ok(Some(found)) =
        wheels::lookup(client, &index, &name, &version, platform, &minors).await
        && let Some(install) = err.downcast_mut::<InstallError>()
    {
        install.set_wheel_advice(WheelAdvice {
            name,
            version,
            newest_python: found.newest().map(|m| format!("3.{m}")),
        });
    }
    err
}

/// A changed Python and the pin that forced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `X.Y`.
    pub python: String,
    /// The pin's file.
    pub file: String,
    /// The pin's line.
    pub line: Option<usize>,
    /// `numpy==2.2.6 has no wheels for 3.14`.
    pub detail: String,
}

/// Asks the index about every pin; `None` keeps the planned Python (`candidates[0]`).
async fn choose(
    client: &Client,
    index: &Index,
    platform: &Platform,
    candidates: &[String],
    pins: &[ExactPin],
) -> Result<Option<Choice>> {
    let minors: Vec<u8> = candidates.iter().filter_map(|c| minor(c)).collect();
    let mut found: Vec<(usize, Option<Wheels>)> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < pins.len() || !tasks.is_empty() {
        while next < pins.len() && tasks.len() < PARALLEL {
            let (client, index, platform, minors) = (
                client.clone(),
                index.clone(),
                platform.clone(),
                minors.clone(),
            );
            let pin = pins[next].clone();
            let at = next;
            tasks.spawn(async move {
                let wheels =
                    wheels::lookup(&client, &index, &pin.name, &pin.version, &platform, &minors)
                        .await;
                (at, wheels)
            });
            next += 1;
        }
        if let Some(done) = tasks.join_next().await {
            let (at, wheels) = done?;
            found.push((at, wheels?));
        }
    }
    found.sort_by_key(|(at, _)| *at);
    let wheels: Vec<Option<Wheels>> = found.into_iter().map(|(_, w)| w).collect();
    Ok(decide(candidates, pins, &wheels))
}

/// The newest candidate every pin with wheels has a wheel for; `None` when that is the planned
/// one (`candidates[0]`) or when no candidate suits them all (the install then fails with the
/// failure hint, which names the pin).
pub fn decide(
    candidates: &[String],
    pins: &[ExactPin],
    wheels: &[Option<Wheels>],
) -> Option<Choice> {
    let constraining: Vec<(&ExactPin, &Wheels)> = pins
        .iter()
        .zip(wheels)
        .filter_map(|(pin, w)| w.as_ref().filter(|w| w.any_wheel).map(|w| (pin, w)))
        .collect();
    let suits = |candidate: &String| {
        minor(candidate).is_some_and(|m| constraining.iter().all(|(_, w)| w.minors.contains(&m)))
    };
    let chosen = candidates.iter().find(|c| suits(c))?;
    let planned = candidates.first()?;
    if chosen == planned {
        return None;
    }
    let planned_minor = minor(planned)?;
    let (pin, _) = constraining
        .iter()
        .find(|(_, w)| !w.minors.contains(&planned_minor))?;
    Some(Choice {
        python: chosen.clone(),
        file: pin.file.clone(),
        line: pin.line,
        detail: format!("{}=={} has no wheels for {planned}", pin.name, pin.version),
    })
}

/// `3.13` → 13.
fn minor(version: &str) -> Option<u8> {
    version.strip_prefix("3.")?.split('.').next()?.parse().ok()
}

fn cache_key(
    index: &Index,
    platform: &Platform,
    candidates: &[String],
    pins: &[ExactPin],
) -> String {
    let mut h = Sha256::new();
    for part in [index.display(), platform.to_string(), candidates.join(",")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for pin in pins {
        h.update(
            format!(
                "{}=={}\0{}\0{:?}\0",
                pin.name, pin.version, pin.file, pin.line
            )
            .as_bytes(),
        );
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A remembered answer: `Some(None)` keeps the Python, `Some(Some(choice))` changes it.
fn remembered(cache: &Cache, key: &str) -> Option<Option<Choice>> {
    let path = cache.root().join(CACHE_DIR).join(key);
    let text = fs_err::read_to_string(&path).ok()?;
    if text == "keep\n" {
        return Some(None);
    }
    let fresh = fs_err::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < CHANGE_TTL);
    let mut parts = text.trim_end_matches('\n').splitn(4, '\t');
    let (python, file, line, detail) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    fresh.then(|| {
        Some(Choice {
            python: python.to_owned(),
            file: file.to_owned(),
            line: line.parse().ok(),
            detail: detail.to_owned(),
        })
    })
}

/// Remembers an answer (best effort: a cache that cannot be written only costs a lookup).
fn remember(cache: &Cache, key: &str, answer: &Option<Choice>) {
    let text = match answer {
        None => "keep\n".to_owned(),
        Some(c) => format!(
            "{}\t{}\t{}\t{}\n",
            c.python,
            c.file,
            c.line.map(|l| l.to_string()).unwrap_or_default(),
            c.detail
        ),
    };
    if let (Ok(dir), Ok(())) = (
        cache.dir(CACHE_DIR),
        fs_err::create_dir_all(cache.tmp_dir()),
    ) {
        let _ = crate::cache::write_atomic_in(&cache.tmp_dir(), &dir.join(key), text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn pin(name: &str, version: &str, line: usize) -> ExactPin {
        ExactPin {
            name: name.into(),
            version: version.into(),
            file: "requirements.txt".into(),
            line: Some(line),
        }
    }

    fn wheels(minors: &[u8]) -> Option<Wheels> {
        Some(Wheels {
            minors: minors.iter().copied().collect::<BTreeSet<_>>(),
            any_wheel: true,
        })
    }

    fn candidates() -> Vec<String> {
        ["3.14", "3.13", "3.12", "3.11", "3.10", "3.9"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn the_newest_python_every_pin_has_wheels_for() {
        let pins = [
            pin("flask", "3.1.3", 1),
            pin("numpy", "2.2.6", 3),
            pin("lxml", "6.0.0", 4),
        ];
        let all = wheels(&[9, 10, 11, 12, 13, 14]);
        let choice = decide(
            &candidates(),
            &pins,
            &[
                all.clone(),
                wheels(&[10, 11, 12, 13]),
                wheels(&[9, 10, 11, 12, 13, 14]),
            ],
        )
        .expect("changed");
        assert_eq!(choice.python, "3.13");
        assert_eq!(choice.detail, "numpy==2.2.6 has no wheels for 3.14");
        assert_eq!(choice.line, Some(3));
        // Everything has wheels for the planned Python: keep it.
        assert_eq!(
            decide(
                &candidates(),
                &pins,
                &[all.clone(), all.clone(), all.clone()]
            ),
            None
        );
        // Source-only and unknown pins do not constrain.
        let source_only = Some(Wheels {
            minors: BTreeSet::new(),
            any_wheel: false,
        });
        assert_eq!(
            decide(&candidates(), &pins, &[source_only, None, all.clone()]),
            None
        );
        // No Python suits them all: keep the plan (the install failure names the pin).
        assert_eq!(
            decide(&candidates(), &pins, &[wheels(&[14]), wheels(&[12]), all]),
            None
        );
    }
}
