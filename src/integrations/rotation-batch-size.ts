/**
 * Rows per batch of a key rotation when none is given: one short transaction each. A module of
 * its own so that `keys:rotate --help` can show it without loading the rotation (kysely).
 */
export const DEFAULT_ROTATION_BATCH_SIZE = 500
