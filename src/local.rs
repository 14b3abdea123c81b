//! The zero-setup local PostgreSQL cluster (DESIGN §6): a data directory created with `initdb`
//! on first use and started with `pg_ctl`, listening on 127.0.0.1 at a free port it records.
//! The test harness starts its throw-away clusters with the same code.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Serialize;

use crate::error::Error;

/// The database the local cluster's URL names.
pub const DATABASE: &str = "postgres";
/// The superuser `initdb` creates; trust authentication on loopback only.
pub const SUPERUSER: &str = "postgres";

/// How the server is tuned: the test harness trades durability for speed.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`: for throw-away clusters.
    pub fast: bool,
    /// More `-c name=value` server settings (e.g. `ssl=on` and its files, for TLS tests).
    pub settings: Vec<(String, String)>,
}

/// A cluster rooted at a directory that holds its state.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Where the port file and the start lock live (`.migrate/` in a project).
    root: PathBuf,
    /// Where the server's own files live: `root`, unless the server's user cannot reach it.
    server_dir: PathBuf,
    bindir: PathBuf,
    /// The uid/gid the server runs as when this process is root.
    run_as: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub running: bool,
    pub initialized: bool,
    pub data_dir: String,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub bindir: String,
}

impl Cluster {
    pub fn new(root: &Path) -> Result<Cluster, Error> {
        let bindir = find_bindir()?;
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let server_dir = match run_as {
            Some((uid, gid)) if !reachable_by(root, uid, gid) => std::env::temp_dir().join(
                format!("migrate-cluster-{}", short_hash(&root.to_string_lossy())),
            ),
            _ => root.to_path_buf(),
        };
        Ok(Cluster {
            root: root.to_path_buf(),
            server_dir,
            bindir,
            run_as,
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.server_dir.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.server_dir.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.server_dir.join("server.log")
    }

    fn port_file(&self) -> PathBuf {
        self.root.join("port")
    }

    pub fn url(&self, port: u16, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{database}")
    }

    fn recorded_port(&self) -> Option<u16> {
        fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn is_initialized(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    pub fn is_running(&self) -> bool {
        self.is_initialized()
            && self
                .pg_ctl(&["status", "-D"], &[self.data_dir().as_os_str()])
                .map(|o| o.status.success())
                .unwrap_or(false)
    }

    pub fn status(&self) -> ClusterStatus {
        let running = self.is_running();
        let port = if running { self.recorded_port() } else { None };
        ClusterStatus {
            running,
            initialized: self.is_initialized(),
            data_dir: self.data_dir().display().to_string(),
            port,
            url: port.map(|p| self.url(p, DATABASE)),
            bindir: self.bindir.display().to_string(),
        }
    }

    /// Creates the cluster if needed and starts it if it is not running; returns its port.
    /// Safe to call from several processes at once: they serialise on a lock file.
    pub fn ensure_running(&self, options: ServerOptions) -> Result<u16, Error> {
        fs::create_dir_all(&self.root).map_err(|e| io_error("create", &self.root, e))?;
        let lock_path = self.root.join("start.lock");
        let lock = File::create(&lock_path).map_err(|e| io_error("create", &lock_path, e))?;
        lock.lock().map_err(|e| io_error("lock", &lock_path, e))?;

        if !self.is_initialized() {
            self.init()?;
        }
        if self.is_running() {
            if let Some(port) = self.recorded_port() {
                return Ok(port);
            }
        }
        let mut port = match self.recorded_port() {
            Some(p) if port_is_free(p) => p,
            _ => free_port()?,
        };
        // A free port is only free until someone binds it: another cluster starting at the
        // same moment (parallel test processes) may take it first. The server then fails to
        // bind and exits; start again on another port.
        let mut tries = 1;
        loop {
            match self.start(port, &options) {
                Ok(()) => break,
                Err(StartError::PortTaken(_)) if tries < PORT_TRIES => {
                    tries += 1;
                    port = free_port()?;
                }
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
        fs::write(self.port_file(), format!("{port}\n"))
            .map_err(|e| io_error("write", &self.port_file(), e))?;
        Ok(port)
    }

    fn init(&self) -> Result<(), Error> {
        let data = self.data_dir();
        for dir in [&self.server_dir, &self.socket_dir()] {
            fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .map_err(|e| io_error("chown", dir, e))?;
            }
        }
        if data.exists() {
            fs::remove_dir_all(&data).map_err(|e| io_error("remove", &data, e))?;
        }
        let output = self
            .command("initdb")
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .arg(format!("--username={SUPERUSER}"))
            .arg("-D")
            .arg(&data)
            .output()
            .map_err(|e| io_error("run", &self.bindir.join("initdb"), e))?;
        if !output.status.success() {
            return Err(Error::unavailable(format!(
                "initdb failed for {}:\n{}",
                data.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    fn start(&self, port: u16, options: &ServerOptions) -> Result<(), StartError> {
        let socket_dir = self.socket_dir();
        // A Unix socket path is limited to ~107 bytes; beyond that, listen on TCP only.
        let sockets = if socket_dir.as_os_str().len() < 90 {
            socket_dir.display().to_string()
        } else {
            String::new()
        };
        let mut server_options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{sockets}'"
        );
        if options.fast {
            server_options
                .push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        for (name, value) in &options.settings {
            server_options.push_str(&format!(" -c {name}='{value}'"));
        }
        let log = self.log_file();
        // Only this attempt's lines of the log tell why it failed.
        let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let output = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(server_options)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| StartError::Other(io_error("run", &self.bindir.join("pg_ctl"), e)))?;
        if !output.status.success() {
            let attempt = fs::read(&log)
                .map(|t| {
                    let new = t.get(log_start as usize..).unwrap_or(&t);
                    String::from_utf8_lossy(new).into_owned()
                })
                .unwrap_or_default();
            let lines: Vec<&str> = attempt.lines().collect();
            let tail = lines[lines.len().saturating_sub(8)..].join("\n");
            let error = Error::unavailable(format!(
                "could not start the local PostgreSQL cluster ({}):\n{}\n{}",
                self.data_dir().display(),
                String::from_utf8_lossy(&output.stderr).trim(),
                tail
            ));
            // "could not bind IPv4 address "127.0.0.1": Address already in use"
            return Err(if attempt.contains("could not bind") {
                StartError::PortTaken(error)
            } else {
                StartError::Other(error)
            });
        }
        Ok(())
    }

    /// Writes a file the server reads (a TLS key or certificate) into its directory: owned by
    /// the server's user with mode 0600, as PostgreSQL demands of a key. Returns its path.
    pub fn write_server_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, Error> {
        fs::create_dir_all(&self.server_dir)
            .map_err(|e| io_error("create", &self.server_dir, e))?;
        let path = self.server_dir.join(name);
        fs::write(&path, contents).map_err(|e| io_error("write", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("chmod", &path, e))?;
        if let Some((uid, gid)) = self.run_as {
            for p in [&self.server_dir, &path] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| io_error("chown", p, e))?;
            }
        }
        Ok(path)
    }

    /// Stops the server if it runs; returns whether it was running.
    pub fn stop(&self) -> Result<bool, Error> {
        if !self.is_running() {
            return Ok(false);
        }
        let output = self
            .pg_ctl(
                &["stop", "-m", "fast", "-w", "-D"],
                &[self.data_dir().as_os_str()],
            )
            .map_err(|e| io_error("run", &self.bindir.join("pg_ctl"), e))?;
        if !output.status.success() {
            return Err(Error::unavailable(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(true)
    }

    /// Stops the server at once (no checkpoint) and removes every file of the cluster.
    pub fn destroy(&self) {
        if self.is_initialized() {
            let _ = self.pg_ctl(
                &["stop", "-m", "immediate", "-w", "-D"],
                &[self.data_dir().as_os_str()],
            );
        }
        let _ = fs::remove_dir_all(&self.server_dir);
        let _ = fs::remove_dir_all(&self.root);
    }

    /// Stops the server, deletes its data and starts a new empty cluster.
    pub fn reset(&self, options: ServerOptions) -> Result<u16, Error> {
        self.stop()?;
        let data = self.data_dir();
        if data.exists() {
            fs::remove_dir_all(&data).map_err(|e| io_error("remove", &data, e))?;
        }
        self.ensure_running(options)
    }

    fn pg_ctl(&self, args: &[&str], more: &[&std::ffi::OsStr]) -> std::io::Result<Output> {
        self.command("pg_ctl")
            .args(args)
            .args(more)
            .stdin(Stdio::null())
            .output()
    }

    /// A server binary, run as the `postgres` user when this process is root.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGPASSWORD",
        ] {
            command.env_remove(var);
        }
        command.env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid).current_dir(&self.server_dir);
        }
        command
    }
}

/// How many ports `ensure_running` tries before giving up.
const PORT_TRIES: usize = 5;

/// Why the server did not start: its port was taken meanwhile (try another), or anything else.
enum StartError {
    PortTaken(Error),
    Other(Error),
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::unavailable(format!("cannot {action} {}: {e}", path.display()))
}

/// Finds `initdb`, `pg_ctl` and `postgres`: `PG_BINDIR`, then `PATH`, then `pg_config
/// --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Result<PathBuf, Error> {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(Error::unavailable(format!(
                "PG_BINDIR={} has no initdb, pg_ctl and postgres; point it at PostgreSQL's bin directory",
                dir.display()
            )))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
            // PATH often holds links to a version's own bin directory, which also has the
            // client tools (pg_dump, psql) beside the server: use that directory.
            return Ok(fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|real| real.parent().map(Path::to_path_buf))
                .filter(|real| has_server(real))
                .unwrap_or(dir));
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, dir)| dir).ok_or_else(|| {
        Error::unavailable(
            "no PostgreSQL server binaries found (looked in PG_BINDIR, PATH, `pg_config --bindir` \
             and /usr/lib/postgresql/*/bin); install PostgreSQL 15 or newer \
             (Debian/Ubuntu: `apt-get install postgresql`), or pass a server with --database-url",
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The `postgres` system user's uid and gid, for running the server when we are root.
fn postgres_user() -> Result<(u32, u32), Error> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres")
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            Error::unavailable(
                "running as root, and PostgreSQL refuses to run as root: the server runs as the \
                 `postgres` system user, which does not exist (installing PostgreSQL creates it)",
            )
        })
}

/// Whether `uid`/`gid` may traverse every ancestor of `path` (so the server can use it).
fn reachable_by(path: &Path, uid: u32, gid: u32) -> bool {
    let mut dir = Some(path);
    while let Some(d) = dir {
        match fs::metadata(d) {
            Ok(meta) => {
                let mode = meta.permissions().mode();
                let ok = if meta.uid() == uid {
                    mode & 0o100 != 0
                } else if meta.gid() == gid {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                };
                if !ok {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => return false,
        }
        dir = d.parent();
    }
    true
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::migrations::hex(&Sha256::digest(s.as_bytes())[..8])
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::unavailable(format!("cannot find a free port on 127.0.0.1: {e}")))
}
