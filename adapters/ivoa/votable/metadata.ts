import type { SaxesTagNS } from 'saxes';
import { ConstellationError } from '../../../registry/model/errors.js';
import type {
  FieldMeta,
  GroupMeta,
  InfoMeta,
  InfoParent,
  LinkMeta,
  OptionMeta,
  ParamMeta,
  QueryStatus,
  ResourceMeta,
  Serialization,
  TableMeta,
  ValuesMeta,
} from './types.js';
import { type FieldAttrs, compileColumn, fieldFromAttrs } from './fields.js';
import { malformed } from './errors.js';
import { parseTableDataCell } from './tabledata-values.js';

/** What the metadata builder asks of the reader. */
export interface MetadataSink {
  /** A TABLE's metadata is complete (its DATA starts, or it has none). */
  table(meta: TableMeta): void;
  /** The data section starting right after the current start tag is the reader's to read. */
  startData(kind: 'TABLEDATA' | 'STREAM', qname: string, meta: TableMeta, binary2: boolean): void;
  info(info: InfoMeta): void;
  resource(resource: ResourceMeta): void;
}

interface TableState {
  meta: TableMeta;
  emitted: boolean;
  binary2: boolean;
}

/** One open element: its local name and what it is building, if anything. */
interface Frame {
  local: string;
  field?: FieldMeta;
  param?: ParamMeta;
  values?: ValuesMeta;
  option?: OptionMeta;
  group?: GroupMeta;
  info?: InfoMeta;
  text?: string[];
}

/**
 * Turns the XML parser's element events into VOTable metadata: RESOURCEs, TABLEs, FIELDs,
 * PARAMs, VALUES, GROUPs, LINKs, INFOs (with QUERY_STATUS). Elements of other namespaces
 * (MIVOT annotations, STC) are skipped whole.
 */
export class MetadataBuilder {
  private readonly stack: Frame[] = [];
  private readonly resources: ResourceMeta[] = [];
  private table: TableState | null = null;
  private tableCount = 0;
  private foreignDepth = 0;
  private rootUri: string | null = null;
  private readonly valuesById = new Map<string, ValuesMeta>();
  readonly infos: InfoMeta[] = [];
  readonly params: ParamMeta[] = [];
  version: string | undefined;
  status: QueryStatus | null = null;
  overflow = false;
  rootClosed = false;

  constructor(private readonly sink: MetadataSink) {}

  /** Number of TABLE elements seen so far. */
  get tables(): number {
    return this.tableCount;
  }

  /** True once the root element has been opened. */
  get sawRoot(): boolean {
    return this.rootUri !== null;
  }

  /** Handles an opened element (saxes `opentag`, namespaces resolved). */
  open(tag: SaxesTagNS): void {
    if (this.foreignDepth > 0) {
      if (!tag.isSelfClosing) this.foreignDepth++;
      return;
    }
    if (this.rootUri === null) {
      if (tag.local !== 'VOTABLE') {
        throw malformed(`not a VOTable document: the root element is <${tag.name}>, not <VOTABLE>`);
      }
      this.rootUri = tag.uri;
    } else if (!this.isVOTableNs(tag.uri)) {
      if (!tag.isSelfClosing) this.foreignDepth = 1;
      return;
    }
    const attrs = attributesOf(tag);
    const frame: Frame = { local: tag.local };
    const parent = this.stack.length > 0 ? this.stack[this.stack.length - 1] : undefined;
    switch (tag.local) {
      case 'VOTABLE':
        this.version = attrs.version;
        break;
      case 'RESOURCE':
        this.resources.push({
          ...pick(attrs, ['ID', 'name', 'type', 'utype']),
          params: [],
          infos: [],
          groups: [],
          links: [],
          tableCount: 0,
          depth: this.resources.length,
        });
        break;
      case 'TABLE':
        this.openTable(attrs);
        break;
      case 'FIELD':
        if (parent?.local === 'TABLE' && this.table !== null) {
          const fields = this.table.meta.fields;
          frame.field = fieldFromAttrs(attrs, fields.length + 1, 'FIELD');
          fields.push(frame.field);
        }
        break;
      case 'PARAM':
        frame.param = paramFromAttrs(attrs);
        this.paramsOf(parent)?.push(frame.param);
        break;
      case 'VALUES': {
        const owner = parent?.field ?? parent?.param;
        if (owner === undefined) break;
        let values: ValuesMeta = pick(attrs, ['ID', 'type', 'null', 'ref']);
        if (attrs.ref !== undefined) {
          const target = this.valuesById.get(attrs.ref);
          if (target !== undefined) values = { ...target, ...values };
        }
        if (values.ID !== undefined) this.valuesById.set(values.ID, values);
        owner.values = values;
        frame.values = values;
        break;
      }
      case 'MIN':
      case 'MAX':
        if (parent?.values !== undefined && attrs.value !== undefined) {
          const bound = { value: attrs.value, inclusive: (attrs.inclusive ?? 'yes').trim() !== 'no' };
          if (tag.local === 'MIN') parent.values.min = bound;
          else parent.values.max = bound;
        }
        break;
      case 'OPTION': {
        const option: OptionMeta = { value: attrs.value ?? '' };
        if (attrs.name !== undefined) option.name = attrs.name;
        if (parent?.values !== undefined) (parent.values.options ??= []).push(option);
        else if (parent?.option !== undefined) (parent.option.options ??= []).push(option);
        frame.option = option;
        break;
      }
      case 'GROUP':
        frame.group = { ...pick(attrs, ['ID', 'name', 'ucd', 'utype', 'ref']), params: [], fieldRefs: [], paramRefs: [], groups: [] };
        this.groupsOf(parent)?.push(frame.group);
        break;
      case 'FIELDref':
        if (parent?.group !== undefined && attrs.ref !== undefined) parent.group.fieldRefs.push(attrs.ref);
        break;
      case 'PARAMref':
        if (parent?.group !== undefined && attrs.ref !== undefined) parent.group.paramRefs.push(attrs.ref);
        break;
      case 'LINK': {
        const link: LinkMeta = pick(attrs, ['ID', 'title', 'value', 'href', 'action']);
        if (attrs['content-role'] !== undefined) link.contentRole = attrs['content-role'];
        if (attrs['content-type'] !== undefined) link.contentType = attrs['content-type'];
        this.linksOf(parent)?.push(link);
        break;
      }
      case 'DESCRIPTION':
      case 'INFO':
        frame.text = [];
        if (tag.local === 'INFO') {
          frame.info = {
            name: attrs.name ?? '',
            value: attrs.value ?? '',
            ...pick(attrs, ['ID', 'ucd', 'utype', 'ref', 'unit', 'xtype']),
            content: '',
            parent: infoParent(parent?.local),
          };
        }
        break;
      case 'TABLEDATA':
      case 'BINARY':
      case 'BINARY2':
        if (parent?.local === 'DATA' && this.table !== null) {
          const serialization = tag.local as Serialization;
          this.table.meta.serialization = serialization;
          this.table.binary2 = serialization === 'BINARY2';
          this.emitTable();
          if (serialization === 'TABLEDATA' && !tag.isSelfClosing) {
            this.sink.startData('TABLEDATA', tag.name, this.table.meta, false);
          }
        }
        break;
      case 'FITS':
        throw malformed(`TABLE ${this.describeTable()} uses the FITS serialisation, which is not supported`);
      case 'STREAM':
        if ((parent?.local === 'BINARY' || parent?.local === 'BINARY2') && this.table !== null) {
          if (attrs.href !== undefined) {
            throw malformed(`STREAM href="${attrs.href}" (remote data) is not supported; only inline base64 streams are read`);
          }
          const encoding = (attrs.encoding ?? '').trim();
          if (encoding !== 'base64') {
            throw malformed(`inline STREAM encoding "${encoding}" is not supported (base64 is required for inline data)`);
          }
          if (!tag.isSelfClosing) this.sink.startData('STREAM', tag.name, this.table.meta, this.table.binary2);
        }
        break;
      default:
        break;
    }
    if (!tag.isSelfClosing) this.stack.push(frame);
    else this.finish(frame, parent);
  }

  /** Handles a closed element (saxes `closetag`; for self-closing tags `open` already did). */
  close(tag: SaxesTagNS): void {
    if (tag.isSelfClosing) return;
    if (this.foreignDepth > 0) {
      this.foreignDepth--;
      return;
    }
    const frame = this.stack.pop();
    if (frame === undefined) return;
    const parent = this.stack.length > 0 ? this.stack[this.stack.length - 1] : undefined;
    this.finish(frame, parent);
  }

  /** Collects character data for DESCRIPTION and INFO. */
  text(text: string): void {
    if (this.foreignDepth > 0 || this.stack.length === 0) return;
    this.stack[this.stack.length - 1].text?.push(text);
  }

  private finish(frame: Frame, parent: Frame | undefined): void {
    switch (frame.local) {
      case 'VOTABLE':
        this.rootClosed = true;
        break;
      case 'RESOURCE': {
        const resource = this.resources.pop();
        if (resource !== undefined) this.sink.resource(resource);
        break;
      }
      case 'TABLE':
        if (this.table !== null && !this.table.emitted) this.emitTable();
        this.table = null;
        break;
      case 'PARAM':
        if (frame.param !== undefined) frame.param.value = paramValue(frame.param);
        break;
      case 'DESCRIPTION': {
        const text = (frame.text ?? []).join('').trim();
        const owner = parent?.field ?? parent?.param ?? parent?.group;
        if (owner !== undefined) owner.description = text;
        else if (parent?.local === 'TABLE' && this.table !== null) this.table.meta.description = text;
        else if (parent?.local === 'RESOURCE') this.currentResource()!.description = text;
        break;
      }
      case 'INFO':
        if (frame.info !== undefined) {
          frame.info.content = (frame.text ?? []).join('').trim();
          this.addInfo(frame.info, parent);
        }
        break;
      default:
        break;
    }
  }

  private addInfo(info: InfoMeta, parent: Frame | undefined): void {
    if (info.name === 'QUERY_STATUS') {
      const status = info.value.trim().toUpperCase();
      if (status === 'ERROR') {
        const message = info.content !== '' ? info.content : info.value;
        const path = `/VOTABLE${parent?.local === 'RESOURCE' ? '/RESOURCE' : parent?.local === 'TABLE' ? '/RESOURCE/TABLE' : ''}/INFO[@name='QUERY_STATUS']`;
        throw new ConstellationError('UPSTREAM', `VOTable: the service reported QUERY_STATUS=ERROR: ${message}`, {
          violations: [{ path, rule: 'QUERY_STATUS', message }],
        });
      }
      if (status === 'OVERFLOW') this.overflow = true;
      if (status === 'OK' || status === 'OVERFLOW') this.status = this.overflow ? 'OVERFLOW' : status;
    }
    this.infos.push(info);
    if (parent?.local === 'TABLE' && this.table !== null && !this.table.emitted) this.table.meta.infos.push(info);
    else if (parent?.local === 'RESOURCE') this.currentResource()?.infos.push(info);
    this.sink.info(info);
  }

  private openTable(attrs: FieldAttrs): void {
    const resource = this.currentResource();
    if (resource !== undefined) resource.tableCount++;
    const meta: TableMeta = {
      index: this.tableCount++,
      ...pick(attrs, ['ID', 'name', 'ucd', 'utype', 'ref']),
      fields: [],
      params: [],
      groups: [],
      links: [],
      infos: [],
      serialization: null,
      resource: resource ?? emptyResource(),
    };
    if (attrs.nrows !== undefined && /^\s*\d+\s*$/.test(attrs.nrows)) meta.nrows = Number(attrs.nrows);
    if (this.version !== undefined) meta.version = this.version;
    this.table = { meta, emitted: false, binary2: false };
  }

  private emitTable(): void {
    const state = this.table!;
    if (state.emitted) return;
    state.emitted = true;
    const r = state.meta.resource;
    // A snapshot, so later PARAMs and INFOs of the RESOURCE do not change what was reported.
    state.meta.resource = { ...r, params: [...r.params], infos: [...r.infos], groups: [...r.groups], links: [...r.links] };
    // Compile once here so a bad VALUES or arraysize fails before any row is read.
    state.meta.fields.forEach((f, i) => compileColumn(f, i));
    this.sink.table(state.meta);
  }

  private describeTable(): string {
    const meta = this.table?.meta;
    return meta?.name !== undefined ? `"${meta.name}"` : `#${(meta?.index ?? 0) + 1}`;
  }

  private currentResource(): ResourceMeta | undefined {
    return this.resources[this.resources.length - 1];
  }

  private paramsOf(parent: Frame | undefined): ParamMeta[] | undefined {
    if (parent === undefined) return undefined;
    if (parent.group !== undefined) return parent.group.params;
    switch (parent.local) {
      case 'TABLE':
        return this.table?.meta.params;
      case 'RESOURCE':
        return this.currentResource()?.params;
      case 'VOTABLE':
      case 'DEFINITIONS':
        return this.params;
      default:
        return undefined;
    }
  }

  private groupsOf(parent: Frame | undefined): GroupMeta[] | undefined {
    if (parent === undefined) return undefined;
    if (parent.group !== undefined) return parent.group.groups;
    if (parent.local === 'TABLE') return this.table?.meta.groups;
    if (parent.local === 'RESOURCE') return this.currentResource()?.groups;
    return undefined;
  }

  private linksOf(parent: Frame | undefined): LinkMeta[] | undefined {
    if (parent === undefined) return undefined;
    const owner = parent.field ?? parent.param;
    if (owner !== undefined) return (owner.links ??= []);
    if (parent.local === 'TABLE') return this.table?.meta.links;
    if (parent.local === 'RESOURCE') return this.currentResource()?.links;
    return undefined;
  }

  private isVOTableNs(uri: string): boolean {
    return uri === this.rootUri || uri === '' || /votable/i.test(uri);
  }
}

function attributesOf(tag: SaxesTagNS): FieldAttrs {
  const out: FieldAttrs = {};
  for (const attr of Object.values(tag.attributes)) {
    // Namespaced attributes (xsi:schemaLocation, xmlns) are not VOTable attributes.
    if (attr.prefix === '' || attr.uri === '') out[attr.local] = attr.value;
  }
  return out;
}

function pick<K extends string>(attrs: FieldAttrs, keys: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const k of keys) if (attrs[k] !== undefined) out[k] = attrs[k];
  return out;
}

function infoParent(local: string | undefined): InfoParent {
  return local === 'RESOURCE' ? 'RESOURCE' : local === 'TABLE' ? 'TABLE' : 'VOTABLE';
}

function emptyResource(): ResourceMeta {
  return { params: [], infos: [], groups: [], links: [], tableCount: 0, depth: 0 };
}

/** A PARAM with an unknown or missing datatype is kept as a string rather than failing the read. */
function paramFromAttrs(attrs: FieldAttrs): ParamMeta {
  let field: FieldMeta;
  try {
    field = fieldFromAttrs(attrs, 1, 'PARAM');
  } catch {
    field = fieldFromAttrs({ ...attrs, datatype: 'char', arraysize: '*' }, 1, 'PARAM');
  }
  return { ...field, rawValue: attrs.value ?? '', value: null };
}

function paramValue(param: ParamMeta): ParamMeta['value'] {
  try {
    return parseTableDataCell(compileColumn(param, 0), param.rawValue);
  } catch {
    return null;
  }
}
