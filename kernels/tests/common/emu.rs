//! What the CUDA emulator tests share: a C++ compiler and a private scratch folder.

use std::path::PathBuf;
use std::process::Command;

/// A C++ compiler that runs, or why there is none.
pub fn cxx() -> Result<String, String> {
    for c in ["g++", "c++"] {
        if let Ok(o) = Command::new(c).arg("--version").output() {
            if o.status.success() {
                return Ok(c.to_string());
            }
        }
    }
    Err("no C++ compiler (g++ or c++) runs here".into())
}

/// A private folder this test created (mode 0700); removes only the files it was told of.
pub struct Scratch {
    /// The folder.
    pub dir: PathBuf,
    files: Vec<PathBuf>,
}

impl Scratch {
    /// A new folder under the temp dir, mode 0700, created by this call.
    pub fn new() -> Scratch {
        use std::os::unix::fs::DirBuilderExt;
        for _ in 0..16 {
            let dir = std::env::temp_dir().join(format!(
                "tessera-cuda-emu-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            // `create` fails where the path exists: the folder is new and ours.
            if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() {
                return Scratch { dir, files: vec![] };
            }
        }
        panic!("cannot create a private temp folder");
    }
    /// A file in the folder, removed when the folder is dropped.
    pub fn path(&mut self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        self.files.push(p.clone());
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
