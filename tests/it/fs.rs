//! `fenton fs`: real sshfs over the harness sshd, and the faults a laptop meets: sshfs killed,
//! sshd restarted, the link blackholed, a busy mount point. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{installed, wait_until, Builder, TestBox};

/// Names that trip shells, sshfs's option parser and its `host:path` split.
const AWKWARD: &str = "my files, it's \"x\": é";

struct Mounted {
    test: TestBox,
    local: PathBuf,
    remote: PathBuf,
}

fn sshfs_present() -> bool {
    installed("sshfs") && Path::new("/dev/fuse").exists()
}

/// A box whose profile mounts `remote_dir/AWKWARD` on `root/mnt/AWKWARD`, not mounted yet.
fn fs_box(builder: Builder) -> Option<Mounted> {
    let test = builder.start()?;
    let local = test.root.join("mnt").join(AWKWARD);
    let remote = test.remote_dir.join(AWKWARD);
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(remote.join("hello.txt"), "from the box\n").unwrap();
    // The ssh config and the key sit where sshfs's option parser would trip (`,`, `\`, a
    // space), and only the profile names the key.
    let dir = test.root.join("ssh, a\\b c");
    std::fs::create_dir_all(&dir).unwrap();
    let ssh_config = dir.join("config");
    let text = std::fs::read_to_string(test.sshd.ssh_config()).unwrap();
    let text: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("IdentityFile"))
        .collect();
    std::fs::write(&ssh_config, text.join("\n")).unwrap();
    let key = dir.join("id, key");
    std::fs::copy(test.sshd.dir.join("id_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = test
        .default_config(&format!(
            "identity_file = {:?}\nmount = {{ local_path = {:?}, remote_path = {:?} }}\n",
            key.to_str().unwrap(),
            local.to_str().unwrap(),
            remote.to_str().unwrap()
        ))
        .replace(
            &format!("{:?}", test.sshd.ssh_config()),
            &format!("{:?}", ssh_config.to_str().unwrap()),
        );
    test.write_config(&config);
    Some(Mounted {
        test,
        local,
        remote,
    })
}

/// Runs `f` in a thread, giving up after `limit` (the thread may stay stuck on a dead mount).
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// The box mounted through a link the test can cut, with one.txt and two.txt on the box.
fn mounted_behind_a_link() -> Option<Mounted> {
    let m = fs_box(TestBox::builder().link())?;
    m.test.run(["fs", "mount"]).ok();
    assert!(m.local.join("hello.txt").exists());
    for name in ["one.txt", "two.txt"] {
        std::fs::write(m.remote.join(name), name).unwrap();
    }
    Some(m)
}

/// Waits (20 s at most) until a read through the mount gives `want`; each try is bounded
/// too, since a read on a dead link blocks.
fn reads_again(what: &str, path: &Path, want: &str) {
    wait_until(what, Duration::from_secs(20), || {
        let (path, want) = (path.to_path_buf(), want.to_string());
        bounded(Duration::from_secs(10), move || {
            std::fs::read_to_string(path)
        })
        .is_some_and(|r| r.is_ok_and(|t| t == want))
    });
}

fn sshfs_pid(status: &str) -> i32 {
    let rest = status
        .split("sshfs pid ")
        .nth(1)
        .unwrap_or_else(|| panic!("no sshfs pid in {status:?}"));
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// A child killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mount_write_read_list_unmount() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    let test = &m.test;
    let out = test.run(["fs", "mount"]).ok();
    assert!(out.stderr.contains("mounted"), "{out:#?}");
    let status = test.run(["fs", "status"]).ok();
    assert!(status.stdout.starts_with("mounted: "), "{status:#?}");
    assert!(status.stdout.contains(AWKWARD), "{status:#?}");

    // Box to laptop, and laptop to box (checked over plain ssh).
    assert_eq!(
        std::fs::read_to_string(m.local.join("hello.txt")).unwrap(),
        "from the box\n"
    );
    std::fs::write(m.local.join("from laptop, é.txt"), "written here\n").unwrap();
    let remote_file = m.remote.join("from laptop, é.txt");
    let out = test
        .on_box(&format!(
            "cat '{}'",
            remote_file.display().to_string().replace('\'', "'\\''")
        ))
        .ok();
    assert_eq!(out.stdout, "written here\n");
    std::fs::create_dir(m.local.join("sub dir")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&m.local)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["from laptop, é.txt", "hello.txt", "sub dir"]);

    // Again: nothing to do, and it says so. The mount has its own connection: closing the
    // shared one leaves it working.
    let out = test.run(["fs", "mount"]).ok();
    assert!(out.stderr.contains("already mounted"), "{out:#?}");
    test.run(["connect"]).ok();
    test.run(["disconnect"]).ok();
    std::fs::write(m.remote.join("later.txt"), "still here\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(m.local.join("later.txt")).unwrap(),
        "still here\n"
    );

    let out = test.run(["fs", "unmount"]).ok();
    assert!(out.stderr.contains("unmounted"), "{out:#?}");
    assert!(
        is_empty_dir(&m.local),
        "mount point not empty after unmount"
    );
    let status = test.run(["fs", "status"]);
    assert_eq!(status.code, Some(1));
    assert!(status.stdout.starts_with("not mounted"), "{status:#?}");
    // The legacy word mounts too.
    test.run(["-fs"]).ok();
    assert!(m.local.join("hello.txt").exists());
    test.run(["fs", "unmount"]).ok();
}

#[test]
fn refuses_mount_points_it_would_hide_or_cannot_use() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    let test = &m.test;
    std::fs::create_dir_all(&m.local).unwrap();
    std::fs::write(m.local.join("mine.txt"), "keep").unwrap();
    let out = test.run(["fs", "mount"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("is not empty"), "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(m.local.join("mine.txt")).unwrap(),
        "keep"
    );

    std::fs::remove_dir_all(&m.local).unwrap();
    std::fs::write(&m.local, "a file").unwrap();
    let out = test.run(["fs", "mount"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("is a file"), "{out:#?}");
    std::fs::remove_file(&m.local).unwrap();

    // Someone else's mount there: left alone, and said so.
    std::fs::create_dir_all(&m.local).unwrap();
    let mut other = Command::new("sshfs");
    other
        .arg("-F")
        .arg(test.sshd.ssh_config())
        .arg(format!("fenton-sandbox:{}", test.remote_dir.display()))
        .arg(&m.local)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // sshfs's ssh child keeps its stdio: wait for sshfs itself, not for pipes to close.
    let status = bounded(Duration::from_secs(20), move || other.status().unwrap());
    assert!(
        status.is_some_and(|s| s.success()),
        "plain sshfs: {status:?}"
    );
    let out = test.run(["fs", "mount"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("already has fenton-sandbox:"),
        "{out:#?}"
    );
    let out = test.run(["fs", "unmount"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("which fenton did not mount"),
        "{out:#?}"
    );
    let mut unmount = Command::new("fusermount3");
    unmount.arg("-u").arg(&m.local);
    assert_eq!(
        crate::common::run(unmount, Duration::from_secs(10)).code,
        Some(0)
    );

    // No sshfs on PATH: the line that installs it.
    let out = crate::common::run(
        {
            let mut cmd = test.fenton(["fs", "mount"]);
            cmd.env("PATH", "/nonexistent");
            cmd
        },
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("apt install sshfs"), "{out:#?}");

    // Without mount.local_path: ~/fenton-NAME (the profile here is "box").
    test.write_config(&test.default_config(""));
    let status = test.run(["fs", "status"]);
    let default = test.root.join("home/fenton-box");
    assert_eq!(
        status.stdout.trim_end(),
        format!(
            "not mounted: {} (`fenton fs mount` mounts it)",
            default.display()
        )
    );
}

#[test]
fn killed_sshfs_leaves_a_stale_mount_that_mount_recovers() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    let test = &m.test;
    test.run(["fs", "mount"]).ok();
    let pid = sshfs_pid(&test.run(["fs", "status"]).ok().stdout);
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("sshfs to die", Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });

    let status = test.run(["fs", "status"]);
    assert_eq!(status.code, Some(1), "{status:#?}");
    assert!(status.stdout.starts_with("stale: "), "{status:#?}");
    assert!(status.elapsed < Duration::from_secs(3), "{status:#?}");

    let out = test.run(["fs", "mount"]).ok();
    assert!(out.stderr.contains("stale"), "{out:#?}");
    assert_eq!(
        std::fs::read_to_string(m.local.join("hello.txt")).unwrap(),
        "from the box\n"
    );
    test.run(["fs", "unmount"]).ok();
}

#[test]
fn sshd_restart_is_survived_by_reconnecting() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    let test = &m.test;
    test.run(["fs", "mount"]).ok();
    assert!(m.local.join("hello.txt").exists());
    test.sshd.restart();
    std::fs::write(m.remote.join("after.txt"), "after the restart\n").unwrap();
    let start = Instant::now();
    let path = m.local.join("after.txt");
    // The first operation may meet the dead connection; sshfs reconnects for the next.
    reads_again(
        "a read through the mount after sshd restarted",
        &path,
        "after the restart\n",
    );
    eprintln!("reads again {:?} after sshd restarted", start.elapsed());
    test.run(["fs", "unmount"]).ok();
}

#[test]
fn busy_mount_point_is_named_and_force_frees_it() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    let test = &m.test;
    test.run(["fs", "mount"]).ok();
    let sleeper = Guard(
        Command::new("sleep")
            .arg("60")
            .current_dir(&m.local)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = test.run(["fs", "unmount"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("sleep (pid {})", sleeper.0.id())),
        "{out:#?}"
    );
    assert!(out.stderr.contains("--force"), "{out:#?}");
    assert!(m.local.join("hello.txt").exists(), "still mounted");

    let out = test.run(["fs", "unmount", "--force"]).ok();
    assert!(out.elapsed < Duration::from_secs(15), "{out:#?}");
    assert!(
        is_empty_dir(&m.local),
        "mount point not empty after --force"
    );
    let status = test.run(["fs", "status"]);
    assert!(status.stdout.starts_with("not mounted"), "{status:#?}");
}

#[test]
fn dead_link_fails_fast_reconnects_and_force_unmounts() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = mounted_behind_a_link() else {
        return;
    };
    let test = &m.test;
    let link = test.link.as_ref().unwrap();

    link.blackhole();
    let start = Instant::now();
    let path = m.local.join("one.txt");
    let pending = std::thread::spawn(move || (std::fs::read_to_string(path), start.elapsed()));
    // While the read hangs on the dead link, status still answers, and says so.
    let status = test.run(["fs", "status"]);
    assert!(status.elapsed < Duration::from_secs(3), "{status:#?}");
    assert!(status.stdout.starts_with("unresponsive: "), "{status:#?}");

    let (read, took) = bounded(Duration::from_secs(30), move || pending.join().unwrap())
        .expect("a read on a blackholed link still hangs after 30 s");
    assert!(
        read.is_err(),
        "read through a dead link succeeded: {read:?}"
    );
    assert!(
        took < Duration::from_secs(25),
        "the read failed only after {took:?}"
    );
    eprintln!("dead link noticed after {took:?}");

    link.restore();
    let start = Instant::now();
    let path = m.local.join("two.txt");
    reads_again(
        "a read through the mount after the link came back",
        &path,
        "two.txt",
    );
    eprintln!("reads again {:?} after the link came back", start.elapsed());

    link.blackhole();
    let path = m.local.join("hello.txt");
    let _stuck = std::thread::spawn(move || std::fs::metadata(path.join("nothing")));
    let out = test.run(["fs", "unmount", "--force"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.elapsed < Duration::from_secs(15), "{out:#?}");
    eprintln!("unmount --force on a dead link took {:?}", out.elapsed);
    let local = m.local.clone();
    assert!(
        bounded(Duration::from_secs(5), move || is_empty_dir(&local)).unwrap_or(false),
        "mount point not back after --force"
    );
}

#[test]
fn dropped_link_fails_at_once_and_recovers() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = mounted_behind_a_link() else {
        return;
    };
    let test = &m.test;
    let link = test.link.as_ref().unwrap();

    // Connections reset: the box's network answers, its sshd does not.
    link.reject();
    let path = m.local.join("one.txt");
    let start = Instant::now();
    let read = bounded(Duration::from_secs(25), move || {
        std::fs::read_to_string(path)
    })
    .expect("a read on a dropped link still hangs after 25 s");
    assert!(
        read.is_err(),
        "read through a dropped link succeeded: {read:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let status = test.run(["fs", "status"]);
    assert!(status.elapsed < Duration::from_secs(3), "{status:#?}");
    assert!(status.stdout.starts_with("unresponsive: "), "{status:#?}");

    link.restore();
    let path = m.local.join("two.txt");
    reads_again(
        "a read through the mount after the link came back",
        &path,
        "two.txt",
    );
    test.run(["fs", "unmount"]).ok();
    assert!(is_empty_dir(&m.local));
}

#[test]
fn five_mounts_at_once_make_one_mount() {
    require!("sshfs and /dev/fuse", sshfs_present());
    let Some(m) = fs_box(TestBox::builder()) else {
        return;
    };
    // Warm, so that all five reach the mount point together.
    m.test.run(["connect"]).ok();
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let cmd = m.test.fenton(["fs", "mount"]);
            std::thread::spawn(move || crate::common::run(cmd, Duration::from_secs(60)))
        })
        .collect();
    let outs: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().ok())
        .collect();
    let already = outs
        .iter()
        .filter(|o| o.stderr.contains("already mounted"))
        .count();
    assert_eq!(already, 4, "{outs:#?}");
    let mounts = crate::common::mounts_under(&m.test.root);
    assert_eq!(
        mounts,
        std::slice::from_ref(&m.local),
        "one mount on the point"
    );
    assert_eq!(
        std::fs::read_to_string(m.local.join("hello.txt")).unwrap(),
        "from the box\n"
    );
    m.test.run(["fs", "unmount"]).ok();
    assert!(crate::common::mounts_under(&m.test.root).is_empty());
}
