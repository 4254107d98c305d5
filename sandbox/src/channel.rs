//! The parent/child protocol as named methods on a channel (youki style), over a
//! `SOCK_SEQPACKET` socket pair: one fixed-size record per message, so a message is never split.
//!
//! The child side only calls `send(2)` on a stack buffer (async-signal-safe). The parent reads
//! until EOF, which arrives once the sandbox's PID 1 has exited and the command has exec'd (its
//! copy of the socket is close-on-exec).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::config::ExitStatus;

const CREATED: u32 = 1;
const SETUP_FAILED: u32 = 2;
const EXEC_FAILED: u32 = 3;
const EXITED: u32 = 4;
const SIGNALED: u32 = 5;
const READY: u32 = 6;
const RECORD: usize = 12;
/// Most descriptors one [`Message::Ready`] carries.
pub(crate) const MAX_READY_FDS: usize = 8;

/// Where the command failed before it could run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecPhase {
    /// `chdir` to the requested working directory.
    Chdir,
    /// `execve` (every PATH candidate).
    Execve,
    /// Forking the command from the sandbox's PID 1.
    Fork,
}

/// One message from the sandbox to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    /// The setup created the first `len` components of step `step`'s target on the overlay.
    Created { step: u32, len: u32 },
    /// Setup step `step` failed with `errno`.
    SetupFailed { step: u32, errno: i32 },
    /// The command could not be started.
    ExecFailed { phase: ExecPhase, errno: i32 },
    /// The command finished.
    Finished(ExitStatus),
    /// The setup is done and the command is being started; the descriptors travel with it
    /// (`SCM_RIGHTS`, see [`ParentChannel::recv_with_fds`]).
    Ready,
}

/// Creates the channel: `(parent end, child end)`, both close-on-exec.
pub(crate) fn channel() -> io::Result<(ParentChannel, OwnedFd)> {
    let (parent, child) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((ParentChannel(parent), child))
}

/// The sandbox's end. Holds a raw fd because the child moves it to a fixed number before it
/// closes every other descriptor; it never closes it itself (exit/exec does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildChannel(RawFd);

impl ChildChannel {
    /// Wraps the child's end.
    pub fn from_raw(fd: RawFd) -> ChildChannel {
        ChildChannel(fd)
    }

    /// Reports a mountpoint the setup created on the overlay.
    pub fn send_created(self, step: usize, len: usize) {
        self.send(CREATED, step as u32, len as i32);
    }

    /// Reports a failed setup step.
    pub fn send_setup_failed(self, step: usize, errno: i32) {
        self.send(SETUP_FAILED, step as u32, errno);
    }

    /// Reports that the command could not be started.
    pub fn send_exec_failed(self, phase: ExecPhase, errno: i32) {
        let phase = match phase {
            ExecPhase::Chdir => 0,
            ExecPhase::Execve => 1,
            ExecPhase::Fork => 2,
        };
        self.send(EXEC_FAILED, phase, errno);
    }

    /// Reports the command's exit status.
    pub fn send_finished(self, status: ExitStatus) {
        match status {
            ExitStatus::Code(code) => self.send(EXITED, 0, code),
            ExitStatus::Signal(signal) => self.send(SIGNALED, 0, signal),
        }
    }

    /// Reports that the setup is done, passing `fds` (at most [`MAX_READY_FDS`]) to the parent.
    /// Only stack buffers: safe between `clone` and `execve`.
    pub fn send_ready(self, fds: &[BorrowedFd<'_>]) -> Result<(), i32> {
        let fds = fds.get(..fds.len().min(MAX_READY_FDS)).unwrap_or_default();
        let record = Self::record(READY, fds.len() as u32, 0);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_READY_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(libc::ENOBUFS);
        }
        // SAFETY: the fd is open for the child's whole life (see the type's docs).
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        rustix::net::sendmsg(
            fd,
            &[IoSlice::new(&record)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map(drop)
        .map_err(|e| e.raw_os_error())
    }

    fn record(tag: u32, a: u32, b: i32) -> [u8; RECORD] {
        let mut record = [0u8; RECORD];
        record[0..4].copy_from_slice(&tag.to_ne_bytes());
        record[4..8].copy_from_slice(&a.to_ne_bytes());
        record[8..12].copy_from_slice(&b.to_ne_bytes());
        record
    }

    fn send(self, tag: u32, a: u32, b: i32) {
        let record = Self::record(tag, a, b);
        // SAFETY: the fd is open for the child's whole life (see the type's docs).
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        // If the parent is gone there is nobody to tell; MSG_NOSIGNAL avoids SIGPIPE.
        let _ = rustix::net::send(fd, &record, SendFlags::NOSIGNAL);
    }
}

impl AsRawFd for ChildChannel {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The caller's end.
#[derive(Debug)]
pub(crate) struct ParentChannel(OwnedFd);

impl ParentChannel {
    /// Waits for the next message; `None` once every sandbox process has closed its end.
    pub fn recv(&self) -> io::Result<Option<Message>> {
        loop {
            let mut record = [0u8; RECORD];
            let received = match rustix::net::recv(&self.0, &mut record, RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            return decode(&record, received);
        }
    }

    /// Like [`ParentChannel::recv`], also taking the descriptors a message carries (they are
    /// close-on-exec in this process).
    pub fn recv_with_fds(&self) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
        loop {
            let mut record = [0u8; RECORD];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_READY_FDS))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let received = match rustix::net::recvmsg(
                &self.0,
                &mut [IoSliceMut::new(&mut record)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut fds = Vec::new();
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = message {
                    fds.extend(received);
                }
            }
            return Ok(decode(&record, received)?.map(|m| (m, fds)));
        }
    }
}

/// One record as a message; `None` at EOF (`received == 0`).
fn decode(record: &[u8; RECORD], received: usize) -> io::Result<Option<Message>> {
    if received == 0 {
        return Ok(None);
    }
    if received != RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short sandbox channel record",
        ));
    }
    let word = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&record[i..i + 4]);
        b
    };
    let (tag, a, b) = (
        u32::from_ne_bytes(word(0)),
        u32::from_ne_bytes(word(4)),
        i32::from_ne_bytes(word(8)),
    );
    let message = match tag {
        CREATED => Message::Created {
            step: a,
            len: b as u32,
        },
        SETUP_FAILED => Message::SetupFailed { step: a, errno: b },
        EXEC_FAILED => Message::ExecFailed {
            phase: match a {
                0 => ExecPhase::Chdir,
                1 => ExecPhase::Execve,
                _ => ExecPhase::Fork,
            },
            errno: b,
        },
        EXITED => Message::Finished(ExitStatus::Code(b)),
        SIGNALED => Message::Finished(ExitStatus::Signal(b)),
        READY => Message::Ready,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unknown sandbox channel message",
            ));
        }
    };
    Ok(Some(message))
}

impl AsRawFd for ParentChannel {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn messages_round_trip_and_eof_ends_the_stream() {
        let (parent, child_fd) = channel().unwrap();
        let child = ChildChannel::from_raw(child_fd.as_raw_fd());
        child.send_created(7, 2);
        child.send_setup_failed(3, libc::EPERM);
        child.send_exec_failed(ExecPhase::Execve, libc::ENOENT);
        child.send_finished(ExitStatus::Signal(9));
        child.send_finished(ExitStatus::Code(42));
        drop(child_fd);
        let mut got = vec![];
        while let Some(m) = parent.recv().unwrap() {
            got.push(m);
        }
        assert_eq!(
            got,
            vec![
                Message::Created { step: 7, len: 2 },
                Message::SetupFailed {
                    step: 3,
                    errno: libc::EPERM
                },
                Message::ExecFailed {
                    phase: ExecPhase::Execve,
                    errno: libc::ENOENT
                },
                Message::Finished(ExitStatus::Signal(9)),
                Message::Finished(ExitStatus::Code(42)),
            ]
        );
    }

    #[test]
    fn ready_carries_descriptors() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        let (parent, child_fd) = channel().unwrap();
        let child = ChildChannel::from_raw(child_fd.as_raw_fd());
        let (r, w) = rustix::pipe::pipe().unwrap();
        child.send_ready(&[r.as_fd(), w.as_fd()]).unwrap();
        child.send_ready(&[]).unwrap();
        drop((r, w, child_fd));
        let (message, mut fds) = parent.recv_with_fds().unwrap().unwrap();
        assert_eq!(message, Message::Ready);
        assert_eq!(fds.len(), 2);
        let mut w = std::fs::File::from(fds.pop().unwrap());
        let mut r = std::fs::File::from(fds.pop().unwrap());
        w.write_all(b"through the passed pipe").unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the passed pipe");
        let (message, fds) = parent.recv_with_fds().unwrap().unwrap();
        assert_eq!((message, fds.len()), (Message::Ready, 0));
        assert!(parent.recv_with_fds().unwrap().is_none());
    }
}
