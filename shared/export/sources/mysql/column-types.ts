/**
 * MySQL / MariaDB result columns as the server describes them (protocol type
 * code, flags, length, decimals, character set) turned into the type names
 * the server's own DDL uses: `bigint unsigned`, `timestamp(6)`,
 * `decimal(10,2)`, `mediumtext`. Typed output formats start from these names.
 */

/** What mysql2 reports of one result column. */
export interface MysqlField {
  name: string;
  columnType: number;
  flags: number;
  decimals: number;
  columnLength?: number;
  characterSet: number;
  /** MariaDB's extended type information: `json` for a JSON column, which the protocol sends as LONGTEXT. */
  extendedFormat?: string;
}

export const BINARY_CHARSET = 63;
const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;
/** utf8mb4 and friends count 4 (or 3) bytes per character in `columnLength`. */
const BYTES_PER_CHARACTER: Readonly<Record<number, number>> = {
  33: 3,
  45: 4,
  46: 4,
  83: 3,
  192: 3,
  224: 4,
  255: 4,
};

const INTEGERS: Readonly<Record<number, string>> = {
  1: 'tinyint',
  2: 'smallint',
  3: 'int',
  8: 'bigint',
  9: 'mediumint',
};
const BLOB_TYPES = new Set([249, 250, 251, 252]);
/** The BLOB/TEXT family by its largest length (servers send them all as 252, told apart by length). */
const BLOB_SIZES: readonly [number, string][] = [
  [255, 'tiny'],
  [65_535, ''],
  [16_777_215, 'medium'],
];

/** `tinytext`, `text`, `mediumtext` or `longtext` (`...blob` when binary), from the column's length. */
function blobType(field: MysqlField, binary: boolean): string {
  const bytesPerCharacter = binary ? 1 : (BYTES_PER_CHARACTER[field.characterSet] ?? 1);
  const characters = Math.floor((field.columnLength ?? 0) / bytesPerCharacter);
  const size = BLOB_SIZES.find(([limit]) => characters <= limit)?.[1] ?? 'long';
  return `${size}${binary ? 'blob' : 'text'}`;
}

/** The DDL name of one described column's type. */
export function mysqlTypeName(field: MysqlField): string {
  const unsigned = (field.flags & UNSIGNED_FLAG) !== 0 ? ' unsigned' : '';
  const binary = field.characterSet === BINARY_CHARSET;
  const length = field.columnLength ?? 0;
  const precision = (fraction: number) => (fraction > 0 && fraction <= 6 ? `(${fraction})` : '');
  // mysql2 parses such a column into a value; the type says so.
  if (field.extendedFormat === 'json') return 'json';
  const integer = INTEGERS[field.columnType];
  if (integer) return `${integer}${field.columnType === 1 && length === 1 ? '(1)' : ''}${unsigned}`;
  if (BLOB_TYPES.has(field.columnType)) return blobType(field, binary);
  switch (field.columnType) {
    case 0:
    case 246: {
      // columnLength counts the digits, the point (when there is a scale) and the sign (when signed).
      const scale = field.decimals;
      const digits = length - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1);
      return `decimal(${Math.max(digits, 1)},${scale})${unsigned}`;
    }
    case 4:
      return `float${unsigned}`;
    case 5:
      return `double${unsigned}`;
    case 6:
      return 'null';
    case 7:
    case 17:
      return `timestamp${precision(field.decimals)}`;
    case 12:
    case 18:
      return `datetime${precision(field.decimals)}`;
    case 10:
    case 14:
      return 'date';
    case 11:
    case 19:
      return `time${precision(field.decimals)}`;
    case 13:
      return 'year';
    case 16:
      return `bit(${length})`;
    case 245:
      return 'json';
    case 247:
      return 'enum';
    case 248:
      return 'set';
    case 255:
      return 'geometry';
    case 15:
    case 253:
    case 254: {
      if ((field.flags & ENUM_FLAG) !== 0) return 'enum';
      if ((field.flags & SET_FLAG) !== 0) return 'set';
      const fixed = field.columnType === 254;
      if (binary) return `${fixed ? 'binary' : 'varbinary'}(${length})`;
      const characters = Math.floor(length / (BYTES_PER_CHARACTER[field.characterSet] ?? 1));
      return `${fixed ? 'char' : 'varchar'}(${characters})`;
    }
    default:
      return `unknown(${field.columnType})`;
  }
}
