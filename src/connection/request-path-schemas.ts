/**
 * The schemas of the search_path a request runs with (`enterRequest` in
 * supabase/request-context.ts): the exposed schema, then extensions, as PostgREST on Supabase
 * (pg_temp comes last, and holds no function a name without its schema finds). The lesser-code
 * check counts them on the path of the code it follows.
 *
 * @example
 * ```ts
 * `${REQUEST_PATH_SCHEMAS.join(', ')}, pg_temp` // 'public, extensions, pg_temp'
 * ```
 */
export const REQUEST_PATH_SCHEMAS = ['public', 'extensions'] as const
