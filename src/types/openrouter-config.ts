/**
 * Generation parameters of an openrouter_instant resource, passed on to OpenRouter. Known
 * parameters are typed; others OpenRouter accepts may be added.
 */
export interface OpenRouterParams {
  temperature?: number
  maxTokens?: number
  topP?: number
  topK?: number
  frequencyPenalty?: number
  presencePenalty?: number
  repetitionPenalty?: number
  stop?: string[]
  [parameter: string]: unknown
}

/**
 * The shape of `x402_resources.openrouter_config`, the settings of an openrouter_instant
 * resource. Codegen types the column with it (see src/cli/codegen.ts).
 *
 * @example
 * ```ts
 * const config: OpenRouterConfig = {
 *   modelId: 'openai/gpt-4o',
 *   systemPrompt: 'You answer in one sentence.',
 *   params: { temperature: 0.2, maxTokens: 256 },
 * }
 * ```
 */
export interface OpenRouterConfig {
  /** OpenRouter's model identifier, such as `openai/gpt-4o`. */
  modelId: string
  systemPrompt: string
  params: OpenRouterParams
}
