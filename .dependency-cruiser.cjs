/**
 * The allowed directions of imports in src/ (ARCHITECTURE.md explains them), checked by
 * `npm run lint:deps` in CI. A folder may import folders below it in this list, never above:
 *
 *   cli
 *   adoption, export, access,   the commands built on the engine (advisor: Supabase's lints on
 *   advisor, pull               the live database; pull: the live schema into the history)
 *   rehearsal                   migrations rehearsed on a scratch database, measured (migrate:plan,
 *                               lint:locks, and the lock comments of migrate:sql's export)
 *   schema                      schema snapshots and their comparison
 *   migrated-dumps              PGlite dumps of migrated databases, made once and cached
 *   integrations                the app's key access (uses secrets and supabase)
 *   migrator                    the migration engine
 *   supabase                    the platform stand-in and the request context
 *   secrets                     the cipher, no database
 *   connection                  createDb, the database target, errors
 *   types                       generated table types
 *
 * src/migrations is frozen history: it imports kysely and nothing else of the module.
 */
const layers = [
  'cli',
  'adoption|export|access|advisor|pull',
  'rehearsal',
  'schema',
  'migrated-dumps',
  'integrations',
  'migrator',
  'supabase',
  'secrets',
  'connection',
  'types',
]

const upward = layers.slice(1).map((layer, index) => ({
  name: `no-upward-from-${layer.replaceAll('|', '-')}`,
  comment: `src/{${layer}} sits below ${layers.slice(0, index + 1).join(', ')}: it must not import them.`,
  severity: 'error',
  from: { path: `^src/(${layer})/` },
  to: { path: `^src/(${layers.slice(0, index + 1).join('|')})/` },
}))

// Every folder of src/ is in the layer list (or is src/migrations); a folder outside it would
// escape every direction rule, so it is refused, both as an importer and as an import.
const known = `^src/(${[...layers, 'migrations'].join('|')})/|^src/(index|tooling)\\.ts$`

module.exports = {
  forbidden: [
    {
      name: 'no-unlisted-folder',
      comment:
        'A folder of src/ that is not in the layer list of .dependency-cruiser.cjs: add it to the list, in its layer.',
      severity: 'error',
      from: { path: '^src/', pathNot: known },
      to: {},
    },
    {
      name: 'no-import-of-unlisted-folder',
      comment:
        'An import of a folder of src/ that is not in the layer list of .dependency-cruiser.cjs: add it to the list, in its layer.',
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: known },
    },
    {
      name: 'no-circular',
      comment:
        'An import cycle: the modules cannot be read, loaded or tested one without the other.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'adoption-and-export-apart',
      comment: 'The commands are siblings: each builds on the layers below, not on the other.',
      severity: 'error',
      from: { path: '^src/(adoption|export|access|advisor|pull)/' },
      to: { path: '^src/(adoption|export|access|advisor|pull)/', pathNot: '^src/$1/' },
    },
    {
      name: 'migrations-import-only-kysely',
      comment: 'A migration is frozen history: it takes Kysely<any> and imports only kysely.',
      severity: 'error',
      from: { path: '^src/migrations/(?!index\\.ts$)' },
      to: { pathNot: '(^|/)node_modules/kysely/' },
    },
    {
      name: 'no-entry-point-inside',
      comment:
        'src/index.ts and src/tooling.ts are for the app and tools, not for the module itself.',
      severity: 'error',
      from: { path: '^src/(?!index\\.ts$|tooling\\.ts$)' },
      to: { path: '^src/(index|tooling)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
}
