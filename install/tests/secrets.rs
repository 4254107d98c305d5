//! Secrets and host files stay out of the dependency layer, its key and its logs; cache
//! symlinks cannot redirect mounts.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Build, tar_bytes, tempdir};

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

rootless_test! {
    /// Index credentials and a secret env var reach neither the layer bytes, the key, the
    /// history line, the index record nor the returned log.
    fn secrets_in_index_url_and_env_stay_out_of_layer_key_and_log() {
        let dir = tempdir();
        let project = dir.path().join("app");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("requirements.txt"), "itsdangerous==2.2.0\n").unwrap();
        fs_err::write(project.join("main.py"), "print(1)\n").unwrap();
        let cache = dir.path().join("cache");
        let mut build = Build::new(&project, &cache);
        build.env.extend([
            ("UV_INDEX_URL".to_owned(), "https://pyslipuser:idx-canary-7731@pypi.org/simple".to_owned()),
            ("PIP_INDEX_URL".to_owned(), "https://pyslipuser:idx-canary-7731@pypi.org/simple".to_owned()),
            ("UV_INDEX_PRIVATE_PASSWORD".to_owned(), "pw-canary-5512".to_owned()),
            ("MY_API_TOKEN".to_owned(), "env-canary-9001".to_owned()),
        ]);
        let layer = build.run().unwrap();
        let tar = tar_bytes(&layer.blob_path);
        let gz = fs_err::read(&layer.blob_path).unwrap();
        let records: Vec<u8> = fs_err::read_dir(cache.join("deps-v1")).unwrap()
            .flat_map(|e| fs_err::read(e.unwrap().path()).unwrap()).collect();
        for secret in ["idx-canary-7731", "pw-canary-5512", "env-canary-9001", "pyslipuser"] {
            assert!(!contains(&tar, secret) && !contains(&gz, secret), "{secret} in the layer");
            assert!(!layer.key.contains(secret) && !layer.created_by.contains(secret));
            assert!(!layer.log.contains(secret), "{secret} in the log:\n{}", layer.log);
            assert!(!contains(&records, secret), "{secret} in the index record");
        }
        // The key does depend on the index (credentials stripped).
        let mut other = Build::new(&project, &cache);
        other.env.push(("UV_INDEX_URL".to_owned(), "https://pypi.org/simple".to_owned()));
        other.env.push(("PIP_INDEX_URL".to_owned(), "https://pypi.org/simple".to_owned()));
        assert_eq!(pyslip_install::cache_key(&other.request()).unwrap(), layer.key);
        let plain = Build::new(&project, &cache);
        assert_ne!(pyslip_install::cache_key(&plain.request()).unwrap(), layer.key);
    }
}

rootless_test! {
    /// A setup.py run by the install cannot read a canary file in the test user's home.
    fn setup_py_cannot_read_a_canary_in_home() {
        let dir = tempdir();
        let home = std::env::var("HOME").unwrap();
        let canary = tempfile::Builder::new().prefix(".pyslip-install-canary").tempfile_in(&home).unwrap();
        fs_err::write(canary.path(), "home-canary-secret-4242").unwrap();
        let project = dir.path().join("app");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("main.py"), "print(1)\n").unwrap();
        fs_err::write(project.join("setup.py"), format!(r#"
from setuptools import setup
try:
    found = open({path:?}).read()
except Exception as e:
    found = "NOT_READABLE " + type(e).__name__
open("probe_mod.py", "w").write("FOUND = %r\n" % found)
setup(name="probe", version="1.0", py_modules=["probe_mod"])
"#, path = canary.path().display().to_string())).unwrap();
        let layer = Build::new(&project, &dir.path().join("cache")).run().unwrap();
        let tar = tar_bytes(&layer.blob_path);
        assert!(!contains(&tar, "home-canary-secret-4242"), "canary leaked into the layer");
        assert!(contains(&tar, "NOT_READABLE FileNotFoundError"), "probe did not run");
    }
}

rootless_test! {
    /// A symlink planted where a package cache is mounted from (as a malicious setup.py could
    /// do to a cache dir) makes the build fail instead of mounting the link's target.
    fn symlinked_cache_dir_is_refused() {
        let dir = tempdir();
        let project = dir.path().join("app");
        fs_err::create_dir(&project).unwrap();
        fs_err::write(project.join("requirements.txt"), "itsdangerous==2.2.0\n").unwrap();
        fs_err::write(project.join("main.py"), "print(1)\n").unwrap();
        let cache = dir.path().join("cache");
        let target = dir.path().join("host-secrets");
        fs_err::create_dir_all(&cache).unwrap();
        fs_err::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, cache.join("pip-v1")).unwrap();
        let err = Build::new(&project, &cache).run().unwrap_err();
        assert!(matches!(err, pyslip_install::InstallError::Sandbox(pyslip_sandbox::SandboxError::BindSource { .. })), "{err:?}");
        assert!(fs_err::read_dir(&target).unwrap().next().is_none(), "nothing written through the link");
    }
}
