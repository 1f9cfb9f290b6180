// Delivery is completed work: the one rate and the one success rule.
import { describe, expect, it } from '@jest/globals';
import { deliveryFigures, deliveryRate, meetsMinDelivery, runStatus, throughputPerSec } from '../../../operator/coordination/delivery.js';

describe('deliveryRate', () => {
  it('is completed / total in percent, truncated to one decimal like status.json', () => {
    expect(deliveryRate(489, 500)).toBe(97.8);
    expect(deliveryRate(0, 10)).toBe(0);
    expect(deliveryRate(9, 10)).toBe(90);
    expect(deliveryRate(2, 3)).toBe(66.6);
    expect(deliveryRate(999, 1000)).toBe(99.9);
    expect(deliveryRate(9999, 10000)).toBe(99.9);
    expect(deliveryRate(10, 10)).toBe(100);
    expect(deliveryRate(0, 0)).toBe(100);
  });
});

describe('meetsMinDelivery', () => {
  it('judges the counts, not a rounded rate', () => {
    expect(meetsMinDelivery(500, 500, 100)).toBe(true);
    expect(meetsMinDelivery(499, 500, 100)).toBe(false);
    expect(meetsMinDelivery(99999, 100000, 100)).toBe(false);
    expect(meetsMinDelivery(9, 10, 90)).toBe(true);
    expect(meetsMinDelivery(489, 500, 97.8)).toBe(true);
    expect(meetsMinDelivery(488, 500, 97.8)).toBe(false);
    expect(meetsMinDelivery(0, 10, 0)).toBe(true);
    expect(meetsMinDelivery(0, 0, 100)).toBe(true);
  });
});

describe('deliveryFigures', () => {
  it('says completed, failed and the rate', () => {
    expect(deliveryFigures({ total: 500, completed: 489, failed: 11 })).toBe('489/500 agents completed, 11 failed: delivery 97.8%');
  });
});

describe('runStatus: the status figures V1 and V2 compute from their counts', () => {
  it("delivery over all final agents, throughput over this run's completions, coordination time in whole ms", () => {
    expect(runStatus('o', 'running', { total: 500, completed: 489, failed: 11, completedThisRun: 400 }, 2000.4)).toEqual({
      objectiveId: 'o',
      status: 'running',
      agents: { total: 500, completed: 489, failed: 11 },
      deliveryRate: 97.8,
      coordinationTime: 2000,
      throughputAgentsPerSec: 200,
    });
  });

  it('throughput is agents per second to one decimal, 0 before any time passed', () => {
    expect(throughputPerSec(1, 3000)).toBe(0.3);
    expect(throughputPerSec(2, 3000)).toBe(0.7);
    expect(throughputPerSec(10, 0)).toBe(0);
    expect(runStatus('o', 'completed', { total: 0, completed: 0, failed: 0, completedThisRun: 0 }, 0)).toMatchObject({
      deliveryRate: 100,
      throughputAgentsPerSec: 0,
    });
  });
});
