import type { Container } from 'inversify';
import type { Contribution, Slot } from './contribution.js';
import { TOKENS } from './tokens.js';

/** Looks `kind:` up among the registered contributions of a slot. */
export class ContributionRegistry {
  private readonly bySlot = new Map<Slot, Map<string, Contribution>>();

  constructor(contributions: readonly Contribution[]) {
    for (const c of contributions) {
      const m = this.bySlot.get(c.slot) ?? new Map<string, Contribution>();
      if (m.has(c.kind)) throw new Error(`two components register ${c.slot} kind "${c.kind}": rename one of them`);
      m.set(c.kind, c);
      this.bySlot.set(c.slot, m);
    }
  }

  static fromContainer(container: Container): ContributionRegistry {
    const all = container.isBound(TOKENS.Contribution) ? container.getAll<Contribution>(TOKENS.Contribution) : [];
    return new ContributionRegistry(all);
  }

  find(slot: Slot, kind: string): Contribution | undefined {
    return this.bySlot.get(slot)?.get(kind);
  }

  kinds(slot: Slot): string[] {
    return [...(this.bySlot.get(slot)?.keys() ?? [])].sort();
  }

  all(slot: Slot): Contribution[] {
    return [...(this.bySlot.get(slot)?.values() ?? [])];
  }
}
