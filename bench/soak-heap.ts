/**
 * Heap snapshots of the broker through its inspector (the Chrome DevTools protocol), and the
 * difference of two by constructor: what the soak uses to name what a growing heap holds. A
 * snapshot forces a full GC first, so only reachable objects are counted.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { WebSocket } from 'undici';

/** Take a heap snapshot of the process behind inspector `url` into `path`. */
export async function takeSnapshot(url: string, path: string, timeoutMs = 300_000): Promise<void> {
  const out = createWriteStream(path);
  const ws = new WebSocket(url);
  const timer = setTimeout(() => ws.close(), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`inspector ${url}: connection failed`)), { once: true });
    });
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('message', (ev) => {
        const msg = JSON.parse(String(ev.data)) as { id?: number; method?: string; params?: { chunk?: string }; error?: { message: string } };
        if (msg.method === 'HeapProfiler.addHeapSnapshotChunk' && msg.params?.chunk !== undefined) out.write(msg.params.chunk);
        else if (msg.id === 1) (msg.error ? reject(new Error(`inspector: ${msg.error.message}`)) : resolve());
      });
      ws.addEventListener('close', () => reject(new Error(`inspector ${url}: closed before the snapshot ended`)), { once: true });
      ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: false } }));
    });
  } finally {
    clearTimeout(timer);
    ws.close();
    await new Promise<void>((resolve) => out.end(resolve));
  }
}

/** Objects of one constructor (or one kind of V8 object) in a snapshot. */
export interface HeapClass {
  count: number;
  selfBytes: number;
}

interface SnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** A snapshot's objects by constructor name (objects and closures) or by V8 kind in parentheses (strings, arrays, code, ...). */
export async function heapClasses(path: string): Promise<Map<string, HeapClass>> {
  const s = JSON.parse(await readFile(path, 'utf8')) as SnapshotFile;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, HeapClass>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]];
    const key = type === 'object' || type === 'closure' ? `${s.strings[s.nodes[i + nameAt]]}${type === 'closure' ? '()' : ''}` : `(${type})`;
    const c = out.get(key) ?? { count: 0, selfBytes: 0 };
    c.count++;
    c.selfBytes += s.nodes[i + sizeAt];
    out.set(key, c);
  }
  return out;
}

/** The `top` classes that grew most in bytes from `before` to `after`. */
export function heapGrowth(before: Map<string, HeapClass>, after: Map<string, HeapClass>, top = 15): { name: string; count: number; countDelta: number; bytesDelta: number }[] {
  return [...after]
    .map(([name, a]) => {
      const b = before.get(name) ?? { count: 0, selfBytes: 0 };
      return { name, count: a.count, countDelta: a.count - b.count, bytesDelta: a.selfBytes - b.selfBytes };
    })
    .sort((x, y) => y.bytesDelta - x.bytesDelta)
    .slice(0, top);
}
