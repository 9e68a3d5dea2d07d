import { describe, expect, it } from 'vitest'

import { splitSqlStatements } from '../src/rehearsal/split-sql.js'
import { SCRIPT_BEGIN } from '../src/migrator/script-checks.js'
import { exportMigrationSql } from '../src/tooling.js'

// migrate:sql --down printed no lock comments, and did not say so.
const servers: [string, string | undefined][] = [['pglite', undefined]]
if (process.env.TEST_DATABASE_URL) servers.push(['postgres', process.env.TEST_DATABASE_URL])

describe.each(servers)(
  'migrate:sql --down with lock comments, rehearsed on %s',
  (_kind, server) => {
    it('writes a measured lock profile above every statement of the down script', async () => {
      const script = await exportMigrationSql('008_close_supabase_advisor_findings', 'down', {
        lockProfile: { server, rows: 100 },
      })
      const plain = await exportMigrationSql('008_close_supabase_advisor_findings', 'down')
      // The guard's blocks and settings around the down, the runner's idle bound and privilege checks, are
      // the export's, not the migration's: no lock comment.
      const statements = splitSqlStatements(plain).filter(
        (statement) =>
          statement !== SCRIPT_BEGIN &&
          statement !== 'COMMIT' &&
          !/^DO \$(guard|watch|check|shadowed|api_roles|lesser)\$/m.test(statement) &&
          !/^SET LOCAL (standard_conforming_strings|idle_in_transaction_session_timeout|x402\.)/m.test(
            statement,
          ),
      )
      expect(statements.length).toBeGreaterThan(0)
      expect(script.match(/^-- locks: /gm)).toHaveLength(statements.length)
      expect(script).toMatch(/x402_resources ACCESS EXCLUSIVE/)
    })
  },
)
