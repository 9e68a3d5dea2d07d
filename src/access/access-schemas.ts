import { type Kysely, sql } from 'kysely'

/**
 * The schemas the module owns or creates, whose every object the access matrix covers; it also
 * covers any other schema an API role may use ({@link listAccessSchemas}).
 */
export const ACCESS_SCHEMAS = ['public', 'x402_migrations', 'x402_backup'] as const

/** Supabase's own schemas, which the platform and not the module governs. */
const PLATFORM_SCHEMA = /^(auth|storage|extensions|graphql.*|realtime|pg_.*|information_schema)$/

/**
 * {@link ACCESS_SCHEMAS}, then every other schema that anon, authenticated or service_role may
 * use, but Supabase's own: a schema exposed later is measured without anyone listing it here.
 *
 * @example
 * ```ts
 * await listAccessSchemas(db) // ['public', 'x402_migrations', 'x402_backup']
 * ```
 */
export async function listAccessSchemas(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT n.nspname::text AS name FROM pg_catalog.pg_namespace n
    WHERE EXISTS (SELECT FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS r(role)
                  JOIN pg_catalog.pg_roles ON rolname = r.role
                  WHERE has_schema_privilege(r.role, n.oid, 'USAGE'))
    ORDER BY 1
  `.execute(db)
  const own: readonly string[] = ACCESS_SCHEMAS
  const exposed = rows
    .map((row) => row.name)
    .filter((name) => !PLATFORM_SCHEMA.test(name) && !own.includes(name))
  return [...ACCESS_SCHEMAS, ...exposed]
}
