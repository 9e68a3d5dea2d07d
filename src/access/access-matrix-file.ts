/**
 * Where the committed access matrix lives, relative to the package root. A module of its own so
 * that `db:access --help` can name it without loading what measures the matrix.
 */
export const ACCESS_MATRIX_FILE = 'docs/access-matrix.md'
