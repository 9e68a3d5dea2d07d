/** See source-fingerprint.mjs. `root` ends with a path separator. */
export function sourceFingerprint(root: string): string
