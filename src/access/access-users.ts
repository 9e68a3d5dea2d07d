/** The two signed-in users of the access matrix: each owns one row of every table with owners. */
export const ACCESS_USERS = {
  A: 'aaaaaaaa-0000-4000-8000-00000000000a',
  B: 'bbbbbbbb-0000-4000-8000-00000000000b',
} as const
