// The summary of a `decide` run: messages per outcome and per deciding reason, kept as counts
// (never the decisions themselves), printed as a table or as the last JSON line.

import type { Decision } from '../decide/types.js';

/** What a decision run can end in, in the order the summary lists them. */
export const OUTCOMES = ['normal', 'high-risk', 'relay', 'block', 'defer', 'invalid'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Counts of a run: per outcome, and per deciding reason and outcome. */
export class Summary {
  readonly outcomes: Record<Outcome, number> = { normal: 0, 'high-risk': 0, relay: 0, block: 0, defer: 0, invalid: 0 };
  readonly reasons = new Map<string, Partial<Record<Outcome, number>>>();

  add(decision: Decision): void {
    const outcome: Outcome = decision.action === 'deliver' ? decision.pool : decision.action;
    this.outcomes[outcome]++;
    const code = decision.reasons[0]!.code;
    const row = this.reasons.get(code) ?? {};
    row[outcome] = (row[outcome] ?? 0) + 1;
    this.reasons.set(code, row);
  }

  invalid(): void {
    this.outcomes.invalid++;
  }

  get messages(): number {
    return OUTCOMES.reduce((sum, outcome) => sum + this.outcomes[outcome], 0);
  }

  /** Reasons by count, most frequent first, then by name. */
  private sortedReasons(): [string, Partial<Record<Outcome, number>>, number][] {
    return [...this.reasons]
      .map(([code, row]): [string, Partial<Record<Outcome, number>>, number] => [code, row, Object.values(row).reduce((a, b) => a + b, 0)])
      .sort((a, b) => b[2] - a[2] || a[0].localeCompare(b[0]));
  }

  /** The summary line and the table: one row per deciding reason, one column per outcome. */
  table(): string {
    const head = `${this.messages} message(s): ${OUTCOMES.map((outcome) => `${outcome} ${this.outcomes[outcome]}`).join(', ')}`;
    const columns = OUTCOMES.filter((outcome) => outcome !== 'invalid');
    const rows: string[][] = [['deciding reason', ...columns, 'total']];
    for (const [code, row, total] of this.sortedReasons()) rows.push([code, ...columns.map((outcome) => String(row[outcome] ?? 0)), String(total)]);
    if (this.outcomes.invalid > 0) rows.push(['(invalid message)', ...columns.map(() => '0'), String(this.outcomes.invalid)]);
    rows.push(['total', ...columns.map((outcome) => String(this.outcomes[outcome])), String(this.messages)]);
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    const format = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
    const rule = widths.map((width) => '-'.repeat(width)).join('  ');
    const lines = rows.map(format);
    lines.splice(1, 0, rule);
    lines.splice(lines.length - 1, 0, rule);
    return `${head}\n\n${lines.join('\n')}`;
  }

  toJSON(): { messages: number; outcomes: Record<Outcome, number>; reasons: Record<string, Partial<Record<Outcome, number>> & { total: number }> } {
    return {
      messages: this.messages,
      outcomes: { ...this.outcomes },
      reasons: Object.fromEntries(this.sortedReasons().map(([code, row, total]) => [code, { ...row, total }])),
    };
  }
}
