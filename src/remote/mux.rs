//! One TCP stream to HOST:PORT as the box sees it, carried by the shared connection: what
//! `ssh -S CONTROL -W HOST:PORT` asks the master for (OpenSSH's mux request NEW_STDIO_FWD,
//! PROTOCOL.mux), asked here directly so that a forwarded connection costs no process. The
//! master gets two pipes, one each way, and answers once the box has reached HOST:PORT, so a
//! refusal there is known before a byte is carried.
//!
//! The `openssh` crate's mux client has sessions and listening forwards but not this request.

use std::io::{ErrorKind, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::pipe;
use tokio::net::UnixStream;

const MSG_HELLO: u32 = 0x0000_0001;
const C_NEW_STDIO_FWD: u32 = 0x1000_0008;
const S_PERMISSION_DENIED: u32 = 0x8000_0002;
const S_FAILURE: u32 = 0x8000_0003;
const S_SESSION_OPENED: u32 = 0x8000_0006;
const VERSION: u32 = 4;
/// A mux reply is a few dozen bytes; anything longer is not a master talking.
const MAX_PACKET: u32 = 64 * 1024;

#[derive(Debug)]
pub enum Error {
    /// No master listens at the control socket (it died, or never was).
    NoMaster(std::io::Error),
    /// The master or the box said no: the target refused, or forwarding is not allowed.
    Refused(String),
    /// Anything else on the control socket: it closed mid-request, or spoke nonsense.
    Broken(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoMaster(e) => write!(f, "no shared connection ({e})"),
            Error::Refused(why) => write!(f, "refused: {why}"),
            Error::Broken(why) => write!(f, "the shared connection failed: {why}"),
        }
    }
}

/// A stream to the box, asked for: write to `to_box`, read from `from_box` (bytes may flow
/// before the box has answered: the pipes hold them). `control` carries the answer
/// ([`Channel::opened`]) and must be kept until both pipes are done: the master ends the
/// stream when it closes, and closes it (end of file) when the stream has ended.
pub struct Channel {
    pub to_box: pipe::Sender,
    pub from_box: pipe::Receiver,
    pub control: UnixStream,
}

/// A control connection to the master, greeted and ready for one request.
pub struct Greeted(UnixStream);

fn broken(e: std::io::Error) -> Error {
    Error::Broken(e.to_string())
}

/// Connects to the master at `control` and exchanges greetings.
pub async fn greet(control: &Path) -> Result<Greeted, Error> {
    let mut sock = connect(control).await?;
    let mut hello = Vec::new();
    put_u32(&mut hello, MSG_HELLO);
    put_u32(&mut hello, VERSION);
    send_packet(&mut sock, &hello)
        .await
        .map_err(|e| match e.kind() {
            // A master that died after its socket was accepted.
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Error::NoMaster(e),
            _ => broken(e),
        })?;
    let reply = read_packet(&mut sock).await.map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => Error::NoMaster(e),
        _ => broken(e),
    })?;
    if get_u32(&reply, 0) != Some(MSG_HELLO) {
        return Err(Error::Broken(
            "the control socket did not greet as ssh does".into(),
        ));
    }
    Ok(Greeted(sock))
}

/// How long a connection waits for room in the master's queue of connections not yet
/// accepted (a burst of hundreds at once fills it).
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects to the master's control socket. A full queue ("would block": the master is
/// busy accepting the others of a burst) is waited out, briefly at random so that a burst
/// does not retry in step, for [`QUEUE_WAIT`] at most.
async fn connect(control: &Path) -> Result<UnixStream, Error> {
    let start = std::time::Instant::now();
    loop {
        match UnixStream::connect(control).await {
            Ok(sock) => return Ok(sock),
            Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < QUEUE_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(2..=20))).await;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(Error::Broken(format!(
                    "the ssh master's control socket took no new connection for {} s (too many at once)",
                    QUEUE_WAIT.as_secs()
                )))
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Err(Error::NoMaster(e))
            }
            Err(e) => return Err(broken(e)),
        }
    }
}

impl Greeted {
    /// Whether the master is still there: it says nothing on a greeted connection until
    /// asked, so anything to read is its end.
    pub fn fresh(&self) -> bool {
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        matches!(
            nix::sys::socket::recv(self.0.as_raw_fd(), &mut [0u8; 1], flags),
            Err(nix::errno::Errno::EAGAIN)
        )
    }

    /// Asks for a stream to `host`:`port` as the box sees it, without waiting for the answer.
    pub async fn request(self, host: &str, port: u16) -> Result<Channel, Error> {
        let Greeted(mut sock) = self;
        let mut request = Vec::new();
        put_u32(&mut request, C_NEW_STDIO_FWD);
        put_u32(&mut request, fastrand::u32(..));
        put_string(&mut request, b"");
        put_string(&mut request, host.as_bytes());
        put_u32(&mut request, u32::from(port));
        let (box_reads, to_box) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| broken(e.into()))?;
        let (from_box, box_writes) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| broken(e.into()))?;
        send_packet(&mut sock, &request).await.map_err(broken)?;
        // The master's stdin and stdout, one per message, as ssh sends them.
        send_fd(&sock, &box_reads).await.map_err(broken)?;
        send_fd(&sock, &box_writes).await.map_err(broken)?;
        drop((box_reads, box_writes));
        Ok(Channel {
            to_box: pipe::Sender::from_owned_fd(to_box).map_err(broken)?,
            from_box: pipe::Receiver::from_owned_fd(from_box).map_err(broken)?,
            control: sock,
        })
    }
}

/// Waits on a channel's control connection for the box's answer: it reached HOST:PORT, or
/// why not. No deadline here: the caller bounds the wait.
pub async fn answer(control: &mut UnixStream) -> Result<(), Error> {
    {
        let reply = read_packet(control).await.map_err(broken)?;
        match get_u32(&reply, 0) {
            Some(S_SESSION_OPENED) => Ok(()),
            Some(S_FAILURE | S_PERMISSION_DENIED) => {
                Err(Error::Refused(get_string(&reply, 8).unwrap_or_default()))
            }
            other => Err(Error::Broken(format!(
                "the master answered message {other:x?} to a forward"
            ))),
        }
    }
}

/// A stream to `host`:`port`, once the box has answered.
pub async fn stdio_forward(control: &Path, host: &str, port: u16) -> Result<Channel, Error> {
    let mut channel = greet(control).await?.request(host, port).await?;
    answer(&mut channel.control).await?;
    Ok(channel)
}

async fn send_fd(sock: &UnixStream, fd: &OwnedFd) -> std::io::Result<()> {
    let fds = [fd.as_raw_fd()];
    loop {
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            let cmsg = [ControlMessage::ScmRights(&fds)];
            sendmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &[IoSlice::new(&[0])],
                &cmsg,
                MsgFlags::empty(),
                None,
            )
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn send_packet(sock: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut packet = Vec::with_capacity(body.len() + 4);
    put_u32(&mut packet, body.len() as u32);
    packet.extend_from_slice(body);
    sock.write_all(&packet).await
}

async fn read_packet(sock: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let len = sock.read_u32().await?;
    if len > MAX_PACKET {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a mux packet of {len} bytes"),
        ));
    }
    let mut body = vec![0; len as usize];
    sock.read_exact(&mut body).await?;
    Ok(body)
}

fn put_u32(buf: &mut Vec<u8>, value: u32) {
    buf.extend_from_slice(&value.to_be_bytes());
}

fn put_string(buf: &mut Vec<u8>, value: &[u8]) {
    put_u32(buf, value.len() as u32);
    buf.extend_from_slice(value);
}

fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn get_string(buf: &[u8], at: usize) -> Option<String> {
    let len = get_u32(buf, at)? as usize;
    let bytes = buf.get(at + 4..at + 4 + len)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_read_as_ssh_writes_them() {
        let mut buf = Vec::new();
        put_u32(&mut buf, S_FAILURE);
        put_u32(&mut buf, 7);
        put_string(&mut buf, b"open failed");
        assert_eq!(get_u32(&buf, 0), Some(S_FAILURE));
        assert_eq!(get_string(&buf, 8).as_deref(), Some("open failed"));
        let mut short = Vec::new();
        put_u32(&mut short, 100);
        short.extend_from_slice(b"abc");
        assert_eq!(get_string(&short, 0), None, "a length past the end");
        assert_eq!(get_u32(&buf[..3], 0), None);
    }
}
