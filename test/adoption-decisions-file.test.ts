import { describe, expect, it } from 'vitest'

import { DEFAULT_ADOPTION_DECISIONS_PATH } from '../src/adoption/adoption-decisions.js'
import { parseAdoptionDecisions, readAdoptionDecisions } from '../src/tooling.js'

// adoption-decisions.json is read whole or refused, with what to fix: a decision is accepted only
// as written, by key, field, live value and reason.

const decision = {
  key: 'policies x402_resources.Marketplace reads listed resources',
  field: '',
  live: {
    command: 'SELECT',
    roles: 'anon, authenticated',
    using: 'is_public',
    permissive: true,
    'with check': null,
    comment: null,
  },
  reason: 'The marketplace lists public resources; decided by the platform team in January.',
}
const parse = (value: unknown) => () =>
  parseAdoptionDecisions(JSON.stringify(value), 'adoption-decisions.json')

describe('adoption-decisions.json', () => {
  it('is empty in the repository, and absent means no decision', () => {
    expect(readAdoptionDecisions(DEFAULT_ADOPTION_DECISIONS_PATH)).toEqual([])
    expect(readAdoptionDecisions('/nonexistent/adoption-decisions.json')).toEqual([])
  })

  it('reads a decision as written', () => {
    expect(parse({ decisions: [decision] })()).toEqual([decision])
    expect(
      parse({
        decisions: [
          { ...decision, key: 'constraints x402_resources.pt_max_tokens_range', live: null },
        ],
      })(),
    ).toEqual([{ ...decision, key: 'constraints x402_resources.pt_max_tokens_range', live: null }])
  })

  it.each([
    ['not JSON', '{', /is not JSON/],
    ['no decisions array', { decision: [] }, /must be an object with a "decisions" array/],
    [
      'a key that names no object',
      { decisions: [{ ...decision, key: 'x402_resources' }] },
      /decision 1 has no "key"/,
    ],
    ['no field', { decisions: [{ ...decision, field: undefined }] }, /has no "field"/],
    [
      'no live value',
      { decisions: [{ key: decision.key, field: '', reason: decision.reason }] },
      /has no "live"/,
    ],
    [
      'the placeholder reason',
      { decisions: [{ ...decision, reason: 'TODO: why this is right, who decided it, when' }] },
      /gives no reason/,
    ],
    [
      'a reason of fewer than three words',
      { decisions: [{ ...decision, reason: 'ok ok' }] },
      /gives no reason/,
    ],
    [
      'a difference decided twice',
      { decisions: [decision, decision] },
      /decision 2 decides .* a second time/,
    ],
  ])('refuses %s, saying what to fix', (_what, value, message) => {
    const run =
      typeof value === 'string'
        ? () => parseAdoptionDecisions(value, 'adoption-decisions.json')
        : parse(value)
    expect(run).toThrow(message)
    expect(run).toThrow(
      /^The adoption decisions in adoption-decisions\.json are not usable: .*Fix the file/,
    )
  })
})
