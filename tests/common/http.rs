//! A local HTTP server standing in for Telegram, ntfy and webhook endpoints: it records each
//! request (method, path, headers, body) and answers 200, or the status set for a path. A
//! Telegram `sendMessage` is answered as Telegram does, with the new message's id (1000, 1001,
//! … in the order they arrive).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

pub struct HttpServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    statuses: Arc<Mutex<HashMap<String, u16>>>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stats, halt) = (requests.clone(), statuses.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (reqs, stats) = (reqs.clone(), stats.clone());
                std::thread::spawn(move || serve(stream, &reqs, &stats));
            }
        });
        HttpServer {
            port,
            requests,
            statuses,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers requests for `path` with `status` from now on.
    pub fn answer(&self, path: &str, status: u16) {
        self.statuses.lock().unwrap().insert(path.into(), status);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `count` requests have arrived whose path starts with `prefix`.
    pub fn wait_for(&self, prefix: &str, count: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<Request> = self
                .requests()
                .into_iter()
                .filter(|r| r.path.starts_with(prefix))
                .collect();
            if got.len() >= count {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {count} requests to {prefix}; got {:#?}",
                    self.requests()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    statuses: &Mutex<HashMap<String, u16>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_lowercase(), value.trim().to_string());
        }
    }
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let status = statuses.lock().unwrap().get(&path).copied().unwrap_or(200);
    let reply = {
        let mut requests = requests.lock().unwrap();
        let reply = if path.ends_with("/sendMessage") && status == 200 {
            let id = 1000
                + requests
                    .iter()
                    .filter(|r| r.path.ends_with("/sendMessage"))
                    .count();
            format!(
                r#"{{"ok":true,"result":{{"message_id":{id},"chat":{{"id":4242,"type":"private"}},"date":1700000000,"text":"x"}}}}"#
            )
        } else {
            "ok".to_string()
        };
        requests.push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        reply
    };
    let _ = writer.write_all(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .as_bytes(),
    );
}
