/**
 * The values that the schema's CHECK constraints allow in its text columns, as TypeScript
 * unions: db:codegen types x402_resources.resource_type and .network with them, and
 * QueryError lists them when a CHECK constraint refuses a value. test/allowed-values.test.ts
 * compares them with the constraints of the migrated schema, so a new migration that changes
 * a constraint cannot leave them stale.
 */

/** x402_resources.resource_type, as x402_resources_resource_type_check allows it. */
export const RESOURCE_TYPES = [
  'external',
  'proxy',
  'prompt',
  'static',
  'prompt_template',
  'openrouter_instant',
] as const

/** A resource type the schema accepts. */
export type ResourceType = (typeof RESOURCE_TYPES)[number]

/** x402_resources.network, as x402_resources_network_check allows it. */
export const NETWORKS = [
  'solana',
  'base',
  'ethereum',
  'polygon',
  'base-sepolia',
  'ethereum-sepolia',
  'solana-devnet',
] as const

/** A payment network the schema accepts. */
export type Network = (typeof NETWORKS)[number]

/** The column and the allowed values of each CHECK constraint that lists values. */
export const CHECKED_VALUES: Readonly<
  Record<string, { table: string; column: string; values: readonly string[] }>
> = {
  x402_resources_resource_type_check: {
    table: 'x402_resources',
    column: 'resource_type',
    values: RESOURCE_TYPES,
  },
  x402_resources_network_check: { table: 'x402_resources', column: 'network', values: NETWORKS },
}
