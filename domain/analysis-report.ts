/** The analysis report of a delivery: exclusions per reason, counts, and findings that warn or block. */

export const EXCLUSION_REASONS = ['invalid_address', 'duplicate', 'quarantined_address', 'address_on_denylist', 'missing_field'] as const;
export type ExclusionReason = (typeof EXCLUSION_REASONS)[number];

export interface AnalysisFinding {
  severity: 'warning' | 'error';
  /** Stable machine code, e.g. NO_BODY, VALIDITY_CAPPED. */
  code: string;
  /** A sentence a campaign manager understands. */
  message: string;
}

export interface AnalysisReport {
  analysedAt: string;
  targeted: number;
  excluded: number;
  toDeliver: number;
  exclusions: Partial<Record<ExclusionReason, number>>;
  topDomains: { domain: string; count: number }[];
  findings: AnalysisFinding[];
  /** True when no finding is an error: the delivery may be confirmed. */
  confirmable: boolean;
}

export function hasBlockingErrors(findings: AnalysisFinding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}
