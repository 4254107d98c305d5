//! The listening TCP sockets of a network namespace, read from `/proc/<pid>/net/tcp{,6}` of a
//! process in it, and what they say about the server.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A socket in state LISTEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The bound address (`0.0.0.0` / `::` for all interfaces).
    pub addr: IpAddr,
    /// The bound port.
    pub port: u16,
}

/// `st` of a listening socket in `/proc/net/tcp` (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// Every listening socket of the network namespace of process `pid` (IPv4 and IPv6).
pub fn listeners(pid: i32) -> io::Result<Vec<Listener>> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        match fs_err::read_to_string(format!("/proc/{pid}/net/{table}")) {
            Ok(text) => found.extend(parse_table(&text)),
            // No IPv6 in this kernel.
            Err(e) if table == "tcp6" && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// The listeners of one table's text; malformed rows are skipped.
pub fn parse_table(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let mut fields = row.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            Some(Listener {
                addr: parse_addr(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
            })
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address (network byte order in memory) as a
/// native-endian hex number, so each word's native bytes are the address bytes.
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let words = |count: usize| -> Option<Vec<u8>> {
        if hex.len() != count * 8 {
            return None;
        }
        let mut bytes = Vec::with_capacity(count * 4);
        for i in 0..count {
            let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        Some(bytes)
    };
    match hex.len() {
        8 => {
            let b: [u8; 4] = words(1)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        32 => {
            let b: [u8; 16] = words(4)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// What the listeners say about a server that should listen on all interfaces at `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    /// On `port`, all interfaces (`0.0.0.0` preferred over `::`).
    Ready(IpAddr),
    /// On `port`, but only on this (loopback) address: unreachable from outside a container.
    LoopbackOnly(IpAddr),
    /// Not on `port`, but on this one.
    OtherPort(Listener),
    /// Nothing listens.
    Nothing,
}

/// Judges `listeners` for a server expected on `port`.
pub fn judge(listeners: &[Listener], port: u16) -> Listening {
    let on_port: Vec<&Listener> = listeners.iter().filter(|l| l.port == port).collect();
    let wildcard = |v4: bool| {
        on_port
            .iter()
            .find(|l| l.addr.is_unspecified() && l.addr.is_ipv4() == v4)
    };
    if let Some(l) = wildcard(true).or_else(|| wildcard(false)) {
        return Listening::Ready(l.addr);
    }
    // In a namespace whose only interface is lo, every specific address is a loopback one.
    if let Some(l) = on_port.first() {
        return Listening::LoopbackOnly(l.addr);
    }
    match listeners.iter().min_by_key(|l| l.port) {
        Some(l) => Listening::OtherPort(*l),
        None => Listening::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real rows (x86-64): 127.0.0.1:5000 listening, 0.0.0.0:8000 listening, one established.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31337 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31338 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F40 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 31339 1 0000000000000000 20 4 30 10 -1
garbage row
";
    // [::]:8888 and [::1]:9000 listening.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:22B8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 100 0 0 10 0
";

    fn l(addr: &str, port: u16) -> Listener {
        Listener {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn tables_parse_to_listeners() {
        assert_eq!(parse_table(TCP), [l("127.0.0.1", 5000), l("0.0.0.0", 8000)]);
        assert_eq!(parse_table(TCP6), [l("::", 8888), l("::1", 9000)]);
    }

    #[test]
    fn judging_prefers_all_interfaces_on_the_port() {
        let ready = [l("127.0.0.1", 8000), l("::", 8000), l("0.0.0.0", 8000)];
        assert_eq!(
            judge(&ready, 8000),
            Listening::Ready("0.0.0.0".parse().unwrap())
        );
        assert_eq!(
            judge(&[l("::", 8000)], 8000),
            Listening::Ready("::".parse().unwrap())
        );
        assert_eq!(
            judge(&[l("127.0.0.1", 8000), l("0.0.0.0", 9)], 8000),
            Listening::LoopbackOnly("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            judge(&[l("0.0.0.0", 9000), l("0.0.0.0", 5000)], 8000),
            Listening::OtherPort(l("0.0.0.0", 5000))
        );
        assert_eq!(judge(&[], 8000), Listening::Nothing);
    }
}
