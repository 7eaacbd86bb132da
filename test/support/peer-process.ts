/**
 * Which local process holds the other end of a loopback connection: a simulated site counting
 * requests from several broker processes asks it once per new connection, so each request is
 * attributed to the broker that sent it (the brokers send no id of their own). Linux only: it
 * reads the socket table in /proc/net/tcp{,6} and the candidates' /proc/<pid>/fd links.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';

/** A hexadecimal port as /proc/net/tcp writes it. */
function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** The inode of the socket whose local port is `local` and remote port `remote`, from the kernel's tables. */
function socketInode(local: number, remote: number): string | undefined {
  const l = `:${hexPort(local)}`;
  const r = `:${hexPort(remote)}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length > 9 && f[1].endsWith(l) && f[2].endsWith(r)) return f[9];
    }
  }
  return undefined;
}

/** True when process `pid` has `socket:[inode]` open. */
function holds(pid: number, inode: string): boolean {
  const target = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return true;
    } catch {
      // The descriptor closed while we looked.
    }
  }
  return false;
}

/**
 * The process among `candidates` holding the client end of `socket` (a connection accepted by
 * this process from 127.0.0.1), or undefined when none does (it closed, or another process sent it).
 */
export function peerProcess(socket: Socket, candidates: readonly number[]): number | undefined {
  if (socket.remotePort === undefined || socket.localPort === undefined) return undefined;
  const inode = socketInode(socket.remotePort, socket.localPort);
  if (inode === undefined || inode === '0') return undefined;
  return candidates.find((pid) => holds(pid, inode));
}
