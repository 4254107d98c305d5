//! Where a recipe's steps run and how their result becomes layer entries.
//!
//! - [`Isolation::Namespaces`]: the rootless sandbox (user, mount and PID namespaces) over an
//!   overlay of the lower roots; the overlay's upper dir holds what the steps changed.
//! - [`Isolation::None`]: no namespace at all (CI containers, hosts that forbid unprivileged user
//!   namespaces). The image's interpreter runs from the unpacked root through its own dynamic
//!   loader, with a staging tree that mirrors the image as its prefix (see [`crate::shadow`]);
//!   the installer writes *for* the image into that tree. Paths the install records (shebangs,
//!   `direct_url.json`) are then rewritten to what an install inside the image writes
//!   ([`crate::fixup`]).
//!
//! Both give their result as canonical changes over the lowers ([`layers::Changes`]), and both
//! byte-compile through [`crate::compile`], so the same install gives the same layer bytes
//! whichever way it ran.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use layers::{Changes, Lowers};
use pyslip_lifecycle::folders;
use pyslip_lifecycle::scratch::ScratchDir;
use pyslip_sandbox::{BindMount, HostCommand, Output, Sandbox, Stdio};

use crate::compile;
use crate::env::{CA_TARGET, EnvPaths, NO_COMPILER, PassThrough, SANDBOX_PATH};
use crate::error::InstallError;
use crate::fixup::{self, Rewrites};
use crate::interp::Interpreter;
use crate::roots::short_lowers;
use crate::shadow;
use crate::steps::{PIP_CACHE, PROJECT, UV, UV_CACHE, WORK};

/// Bytes of each output stream kept per step (the error is at the end).
const CAPTURE: usize = 256 * 1024;

/// Whether build steps run in namespaces or directly on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The rootless sandbox: user, mount and PID namespaces over an overlay root.
    #[default]
    Namespaces,
    /// No namespaces: the installer runs on the host and installs for the unpacked root.
    None,
}

/// What a runner needs to be set up.
pub(crate) struct Setup<'a> {
    /// Lower roots, topmost first (the base root last).
    pub lowers: Vec<PathBuf>,
    /// The project directory (canonical).
    pub project: &'a Path,
    /// Scratch dir of this step (created, empty but for `files/`).
    pub scratch: &'a Path,
    /// Writable work dir (`/.pyslip/work` in the sandbox), inside `scratch`.
    pub files: &'a Path,
    /// The uv binary, when a step runs it.
    pub uv: Option<&'a Path>,
    /// pyslip's cache root (canonical).
    pub cache_dir: &'a Path,
    /// Environment pass-through.
    pub pass: &'a PassThrough,
    /// `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
    /// Extra environment for the steps (the image's own, for collectstatic).
    pub extra_env: Vec<(String, String)>,
    /// Working directory of the steps (a sandbox path; `PROJECT` for installs).
    pub cwd: String,
    /// Root-relative directories the steps write to besides the installer's (the app
    /// directory for collectstatic): copied into the namespace-free path's staging tree.
    pub writable: Vec<String>,
}

/// A place to run steps, created per layer.
#[allow(clippy::large_enum_variant)] // one per layer, never moved around
pub(crate) enum Runner {
    /// The rootless sandbox.
    Sandbox(SandboxRunner),
    /// Straight on the host.
    Host(HostRunner),
}

/// The sandbox runner's state.
pub(crate) struct SandboxRunner {
    sandbox: Sandbox,
    _short: crate::roots::Lowers,
    lowers: Lowers,
    upper: PathBuf,
    files: PathBuf,
    created: BTreeSet<String>,
}

/// The namespace-free runner's state.
pub(crate) struct HostRunner {
    /// A short staging directory outside the cache, when the cache's path is too long for a
    /// shebang line.
    _short: Option<ScratchDir>,
    interp: Interpreter,
    tree: PathBuf,
    bin: PathBuf,
    lowers: Lowers,
    roots: Vec<String>,
    /// Root-relative paths of the interpreter stand-ins in the tree.
    wrappers: BTreeSet<String>,
    env: Vec<(String, String)>,
    /// Sandbox path prefix → host path.
    paths: Vec<(String, String)>,
    cwd: PathBuf,
    rewrites: Rewrites,
}

impl Runner {
    /// Sets up a runner of kind `isolation`.
    pub fn new(isolation: Isolation, setup: Setup<'_>) -> Result<Self, InstallError> {
        match isolation {
            Isolation::Namespaces => SandboxRunner::new(setup).map(Runner::Sandbox),
            Isolation::None => HostRunner::new(setup).map(Runner::Host),
        }
    }

    /// Runs one step (argv as the sandbox sees it) and returns its output.
    pub fn run(&mut self, argv: &[String]) -> Result<Output, InstallError> {
        match self {
            Runner::Sandbox(s) => {
                let out = s
                    .sandbox
                    .run(argv, Stdio::Capture { limit: CAPTURE })
                    .map_err(InstallError::Sandbox)?;
                s.created.extend(out.created_mountpoints.iter().cloned());
                Ok(out)
            }
            Runner::Host(h) => h.run(argv),
        }
    }

    /// The image path of a path a step reported (e.g. Django's `STATIC_ROOT`): the same in the
    /// sandbox; outside it, a path in the staging tree, or `None` for one outside it.
    pub fn image_path(&self, reported: &str) -> Option<String> {
        match self {
            Runner::Sandbox(_) => Some(reported.to_owned()),
            Runner::Host(h) => Path::new(reported)
                .strip_prefix(&h.tree)
                .ok()
                .and_then(|p| p.to_str())
                .map(|p| format!("/{p}")),
        }
    }

    /// What the steps changed so far, canonically.
    pub fn changes(&self, keep: &dyn Fn(&str) -> bool) -> Result<Changes, InstallError> {
        match self {
            Runner::Sandbox(s) => {
                // Parents sort before children; remove_mountpoints walks the list backwards.
                let created: Vec<String> = s.created.iter().cloned().collect();
                pyslip_sandbox::remove_mountpoints(&s.upper, &created)
                    .map_err(InstallError::Sandbox)?;
                layers::changes_from_upper(&s.upper, &s.lowers, keep).map_err(InstallError::Layer)
            }
            Runner::Host(h) => {
                let wrappers = &h.wrappers;
                let unchanged = |p: &str| wrappers.contains(p);
                layers::changes_from_tree(&h.tree, &h.roots, &h.lowers, keep, &unchanged)
                    .map_err(InstallError::Layer)
            }
        }
    }

    /// Puts the installed files right (see [`crate::fixup`]): paths an install outside the
    /// image wrote differently, and files that record the time of the build.
    pub fn fix_files(&self, changes: &Changes) -> Result<(), InstallError> {
        match self {
            Runner::Sandbox(s) => fixup::drop_volatile(&s.upper, &changes.entries),
            Runner::Host(h) => {
                fixup::apply(&h.tree, &changes.entries, &h.rewrites)?;
                fixup::drop_volatile(&h.tree, &changes.entries)
            }
        }
    }

    /// Where the file at `image_path` (`/usr/local/...`) of the step's result lies on this host:
    /// in the overlay's upper dir, or in the staging tree.
    pub fn host_path(&self, image_path: &str) -> PathBuf {
        let rel = image_path.trim_start_matches('/');
        match self {
            Runner::Sandbox(s) => s.upper.join(rel),
            Runner::Host(h) => h.tree.join(rel),
        }
    }

    /// Byte-compiles `groups` of image paths with the image's interpreter, each group in a
    /// fresh process ([`crate::compile`]).
    pub fn compile(&mut self, groups: &[Vec<String>]) -> Result<Output, InstallError> {
        if groups.is_empty() {
            return Ok(Output {
                status: pyslip_sandbox::ExitStatus::Code(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                stdout_dropped: 0,
                stderr_dropped: 0,
                created_mountpoints: Vec::new(),
            });
        }
        let processes = compile::processes().to_string();
        let (list_host, list_arg, prefix) = match self {
            Runner::Sandbox(s) => (
                s.files.join("compile.txt"),
                format!("{WORK}/compile.txt"),
                String::new(),
            ),
            Runner::Host(h) => {
                let list = h.tree.with_file_name("compile.txt");
                let arg = list.to_string_lossy().into_owned();
                (list, arg, h.tree.to_string_lossy().into_owned())
            }
        };
        fs_err::write(&list_host, compile::list(groups, &prefix)).map_err(InstallError::Cache)?;
        let argv: Vec<String> = ["python3", "-c", compile::SCRIPT, &list_arg, &processes]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        match self {
            Runner::Host(h) => {
                let mut argv = argv;
                if let Some(first) = argv.first_mut() {
                    *first = h.bin.join("python3").to_string_lossy().into_owned();
                }
                h.run_raw(argv)
            }
            Runner::Sandbox(_) => self.run(&argv),
        }
    }
}

impl SandboxRunner {
    fn new(setup: Setup<'_>) -> Result<Self, InstallError> {
        let upper = setup.scratch.join("upper");
        let work = setup.scratch.join("work");
        for d in [&upper, &work] {
            fs_err::create_dir(d).map_err(InstallError::Cache)?;
        }
        let uv_cache = setup.cache_dir.join(folders::UV_CACHE);
        let pip_cache = setup.cache_dir.join(folders::PIP_CACHE);
        for d in [&uv_cache, &pip_cache] {
            fs_err::create_dir_all(d).map_err(InstallError::Cache)?;
        }
        let mut mounts = vec![
            BindMount {
                source: setup.project.to_owned(),
                target: PROJECT.into(),
                writable: false,
            },
            BindMount {
                source: setup.files.to_owned(),
                target: WORK.into(),
                writable: true,
            },
            BindMount {
                source: uv_cache,
                target: UV_CACHE.into(),
                writable: true,
            },
            BindMount {
                source: pip_cache,
                target: PIP_CACHE.into(),
                writable: true,
            },
        ];
        if let Some(uv) = setup.uv {
            mounts.push(BindMount {
                source: uv.to_owned(),
                target: UV.into(),
                writable: false,
            });
        }
        if let Some(ca) = &setup.pass.ca_bundle {
            mounts.push(BindMount {
                source: ca.clone(),
                target: CA_TARGET.into(),
                writable: false,
            });
        }
        mounts.extend(setup.pass.input_mounts());
        let paths = EnvPaths {
            uv_cache: UV_CACHE.into(),
            pip_cache: PIP_CACHE.into(),
            ca: CA_TARGET.into(),
            home: "/root".into(),
            tmp: "/tmp".into(),
            path: SANDBOX_PATH.into(),
            sandboxed: true,
        };
        let mut env = setup.extra_env;
        merge_env(&mut env, setup.pass.step_env(setup.mtime, &paths));
        let short = short_lowers(setup.lowers.clone())?;
        let sandbox = Sandbox {
            lower: short.dirs.clone(),
            upper: upper.clone(),
            work,
            mounts,
            env,
            cwd: setup.cwd,
            hostname: "pyslip".into(),
        };
        Ok(Self {
            sandbox,
            _short: short,
            lowers: Lowers::new(setup.lowers),
            upper,
            files: setup.files.to_owned(),
            created: BTreeSet::new(),
        })
    }
}

/// Sets `extra` over `env` (an extra variable replaces one of the same name).
fn merge_env(env: &mut Vec<(String, String)>, extra: Vec<(String, String)>) {
    for (k, v) in extra {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    }
}

/// Longest shebang line the kernel runs (`BINPRM_BUF_SIZE` - 1); installers fall back to a
/// `/bin/sh` trampoline beyond it, which would not match the image's short shebang.
const MAX_SHEBANG: usize = 127;

impl HostRunner {
    fn new(setup: Setup<'_>) -> Result<Self, InstallError> {
        let base = setup.lowers.last().cloned().unwrap_or_default();
        let interp = Interpreter::find(&base)?;
        if interp.machine != host_machine() {
            return Err(InstallError::Interpreter {
                root: base,
                reason: "its interpreter is for another CPU than this host's; the namespace-free path runs the base of the host's platform".into(),
            });
        }
        let layout = interp.layout()?;
        // A staging tree whose interpreter path fits a kernel shebang line (see MAX_SHEBANG).
        let mut tree = setup.scratch.join("t");
        let mut short = None;
        if format!("#!{}/{}", tree.display(), interp.elf_rel).len() > MAX_SHEBANG {
            // Locked while in use and removed with the runner, like every scratch dir.
            let dir = ScratchDir::new_in(&std::env::temp_dir(), "pyslip-")
                .map_err(InstallError::Cache)?;
            tree = dir.join("t");
            short = Some(dir);
        }
        fs_err::create_dir(&tree).map_err(InstallError::Cache)?;
        if format!("#!{}/{}", tree.display(), interp.elf_rel).len() > MAX_SHEBANG
            || tree.to_string_lossy().contains(char::is_whitespace)
        {
            return Err(InstallError::Interpreter {
                root: base,
                reason: format!(
                    "no staging directory short enough for a shebang line was found (TMPDIR is {})",
                    std::env::temp_dir().display()
                ),
            });
        }
        let mut plan = shadow_plan(&interp, &layout);
        plan.copy.extend(setup.writable.iter().cloned());
        let lowers = Lowers::new(setup.lowers.clone());
        shadow::build(&tree, &lowers, &plan)?;

        // The interpreter stand-ins: in the tree (what installers record as sys.executable) and
        // on PATH (`python3` for the steps), each running the root's program with the tree's
        // path as argv[0] so that the tree is its prefix.
        // The interpreter stand-ins. The program's own place in the tree runs the root's program
        // with its own path as argv[0] ("$0": a venv's `bin/python` symlink to it is seen as the
        // venv), so the tree becomes the interpreter's prefix exactly as the image's is found
        // from the program. Its other names (`python3` on PATH, symlinks that may be absolute)
        // and the steps' PATH entries run that one.
        let quote = |p: &Path| shell_quote(&p.to_string_lossy());
        let program = tree.join(&interp.elf_rel);
        let run_program = format!(
            "#!/bin/sh\nexec {} --library-path {} --argv0 \"$0\" {} \"$@\"\n",
            quote(&interp.loader),
            shell_quote(&interp.library_path().to_string_lossy()),
            quote(&interp.elf)
        );
        let run_named = format!("#!/bin/sh\nexec {} \"$@\"\n", quote(&program));
        shadow::put_executable(&tree, &interp.elf_rel, &run_program)?;
        let mut wrappers = BTreeSet::from([interp.elf_rel.clone()]);
        for rel in std::iter::once(&interp.exe).chain(&interp.aliases) {
            if *rel != interp.elf_rel {
                shadow::put_executable(&tree, rel, &run_named)?;
                wrappers.insert(rel.clone());
            }
        }
        let bin = setup.scratch.join("bin");
        let version = format!("python{}.{}", layout.version.0, layout.version.1);
        for name in ["python", "python3", version.as_str()] {
            shadow::put_executable(&bin, name, &run_named)?;
        }

        let home = setup.scratch.join("home");
        let tmp = setup.scratch.join("tmp");
        for d in [&home, &tmp] {
            fs_err::create_dir_all(d).map_err(InstallError::Cache)?;
        }
        let paths = EnvPaths::on_host(
            setup.cache_dir,
            setup.pass,
            &home,
            &tmp,
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        );
        let mut env = setup.extra_env;
        merge_env(&mut env, setup.pass.step_env(setup.mtime, &paths));
        merge_env(
            &mut env,
            NO_COMPILER
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let project = setup.project.to_string_lossy().into_owned();
        let files = setup.files.to_string_lossy().into_owned();
        let mut paths = vec![
            (PROJECT.to_owned(), project),
            (WORK.to_owned(), files.clone()),
        ];
        if let Some(uv) = setup.uv {
            paths.insert(0, (UV.to_owned(), uv.to_string_lossy().into_owned()));
        }
        let cwd = match paths
            .iter()
            .find(|(from, _)| setup.cwd.starts_with(from.as_str()))
        {
            Some(_) => PathBuf::from(translate(&setup.cwd, &paths)),
            // Any other working directory is a path of the image: its place in the tree.
            None => tree.join(setup.cwd.trim_start_matches('/')),
        };
        // Installers record `sys.executable`: the program's place in the tree here, the name
        // found on PATH (`/usr/local/bin/python3`) in the image.
        let image_exe = format!("#!/{}", interp.exe);
        let shebangs = vec![(format!("#!{}", program.display()), image_exe)];
        let rewrites = Rewrites {
            shebangs,
            urls: vec![(format!("file://{files}"), format!("file://{WORK}"))],
        };
        Ok(Self {
            _short: short,
            interp,
            tree,
            bin,
            lowers,
            roots: plan.roots(),
            wrappers,
            env,
            paths,
            cwd,
            rewrites,
        })
    }

    fn run(&self, argv: &[String]) -> Result<Output, InstallError> {
        let argv = argv.iter().map(|a| translate(a, &self.paths)).collect();
        self.run_raw(argv)
    }

    fn run_raw(&self, argv: Vec<String>) -> Result<Output, InstallError> {
        HostCommand {
            argv,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
        }
        .run(Stdio::Capture { limit: CAPTURE })
        .map_err(InstallError::Sandbox)
    }

    /// The unpacked root the interpreter comes from.
    #[allow(dead_code)]
    pub fn root(&self) -> &Path {
        &self.interp.root
    }
}

/// An argument in host terms: pyslip's mount points (`/.pyslip/work/...`) become their host
/// paths; anything else is passed as it is.
fn translate(arg: &str, paths: &[(String, String)]) -> String {
    for (from, to) in paths {
        if arg == from {
            return to.clone();
        }
        if arg.contains(from.as_str()) {
            return arg.replace(from.as_str(), to);
        }
    }
    arg.to_owned()
}

/// `s` in single quotes for /bin/sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The ELF machine of this host (what pyslip itself was built for).
fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86_64" => goblin::elf::header::EM_X86_64,
        "aarch64" => goblin::elf::header::EM_AARCH64,
        "x86" => goblin::elf::header::EM_386,
        "arm" => goblin::elf::header::EM_ARM,
        "riscv64" => goblin::elf::header::EM_RISCV,
        "powerpc64" => goblin::elf::header::EM_PPC64,
        "s390x" => goblin::elf::header::EM_S390,
        _ => 0,
    }
}

/// Which directories of the root the staging tree copies, mirrors or makes real.
fn shadow_plan(interp: &Interpreter, layout: &crate::interp::Layout) -> shadow::Plan {
    let mut plan = shadow::Plan::default();
    for key in ["purelib", "platlib", "scripts"] {
        let p = layout.path(key);
        if !p.is_empty() {
            plan.copy.insert(p.to_owned());
        }
    }
    for dir in &layout.site {
        plan.copy.insert(dir.clone());
    }
    for key in ["data", "include", "platinclude"] {
        let p = layout.path(key);
        if !p.is_empty() {
            plan.mirror.insert(p.to_owned());
        }
    }
    for key in ["stdlib", "platstdlib"] {
        let p = layout.path(key);
        if !p.is_empty() {
            plan.parents.insert(p.to_owned());
        }
    }
    for program in [&interp.exe, &interp.elf_rel] {
        if let Some((dir, _)) = program.rsplit_once('/') {
            plan.parents.insert(dir.to_owned());
        }
    }
    plan
}
