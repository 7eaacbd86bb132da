/** VOTable 1.0–1.5 streaming reader (TABLEDATA, BINARY, BINARY2) and writer (TABLEDATA, BINARY2). */
export { chunksOf, readVOTable, readVOTableToArray, VOTableReader } from './reader.js';
export type { VOTableDocument, VOTableSource } from './reader.js';
export { parseArraysize } from './arraysize.js';
export type * from './types.js';
export { writeVOTable, writeVOTableToBuffer } from './writer.js';
export type { WritableField, WritableInfo, WritableParam, WritableTable, WriteOptions } from './writer.js';
export { TextTableWriter, cellJson, cellText, csvField, tsvField } from './text-table.js';
export type { TextFormat } from './text-table.js';
export { doubleText, float32Text } from './real-text.js';
