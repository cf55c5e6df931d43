//! A real SMTP server for tests: Debian's `python3-aiosmtpd` storing every mail in a
//! Maildir that the test reads. Started per test on a free port, killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

fn python() -> String {
    if let Ok(p) = std::env::var("CONFAB_TEST_PYTHON") {
        return p;
    }
    // Debian's python3 is the one python3-aiosmtpd installs into.
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd; packaging/test.sh does this)");
        let mut sink = Self { child, port, maildir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sink.child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                sink.child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("aiosmtpd exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(30));
        }
        sink
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never
    /// answered, like a mail server that hangs.
    pub fn stall(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill").args([which, &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill {which} failed");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The Maildir `new/` folder every received mail is written to.
    pub fn new_dir(&self) -> PathBuf {
        self.maildir.path().join("mail").join("new")
    }

    /// Every mail received so far, raw.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.new_dir()) else { return Vec::new() };
        entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
    }

    /// Mails addressed to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let header = format!("To: {to}");
        self.mails().into_iter().filter(|m| m.lines().any(|l| l.eq_ignore_ascii_case(&header))).collect()
    }

    /// Waits for the first mail to `to` and returns the 6-digit code in it.
    pub async fn wait_for_otp(&self, to: &str) -> String {
        self.wait_for_otp_within(to, Duration::from_secs(10)).await
    }

    pub async fn wait_for_otp_within(&self, to: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(otp) = self.mails_to(to).iter().rev().find_map(|m| otp_in(m)) {
                return otp;
            }
            assert!(Instant::now() < deadline, "no OTP mail to {to} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn otp_in(mail: &str) -> Option<String> {
    let start = mail.find("Your OTP is ")? + "Your OTP is ".len();
    let code: String = mail[start..].chars().take(6).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
