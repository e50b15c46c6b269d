"""CO₂ figures read from the stores: a period's (`period_carbon`) and a year's, month by
month (`carbon_year`), for the API, the dashboard and the reports. The arithmetic is
`central.carbon.carbon_figures`; this module only reads the energy lines it needs with the
same functions as every other figure (`central.metrics.period_energy`, `coverage_for`), so
CO₂ and kgce always rest on the same quantities and the same coverage."""

from __future__ import annotations

from datetime import datetime

from central.carbon import CarbonFigures, EmissionFactors, carbon_figures
from central.compliance import ComplianceReport
from central.coverage import Coverage
from central.institution import InstitutionConfig
from central.ledger import Ledger
from central.metrics import PeriodEnergy, coverage_for, period_energy
from central.period import Period
from central.profile import CoefficientProfile
from central.registry import mean_energy_users, mean_floor_area
from central.storeport import StoreReader
from central.view import View as _View


def period_carbon(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                  profile: CoefficientProfile, *, start: float, end: float,
                  building: str | None = None, energy: PeriodEnergy | None = None,
                  factors: EmissionFactors | None = None,
                  coverage: Coverage | None = None) -> CarbonFigures:
    """tCO₂, kgCO₂/m² and kgCO₂/person of [start, end), equal to `period_metrics(...).carbon`
    (`energy`, `coverage`: the period's, when the caller has read them already)."""
    if energy is None:
        energy = period_energy(store, ledger, institution, profile, start=start, end=end,
                               building=building)
    if coverage is None:
        coverage = coverage_for(store, institution, start=start, end=end, sums=energy.sums,
                                bills=energy.bills, cuts=energy.cuts,
                                lines=energy.energy_by_type, building=building)
    return carbon_figures(
        factors or EmissionFactors.for_institution(institution), profile, start=start,
        end=end, lines=energy.energy_by_type, coverage=coverage,
        floor_area_m2=mean_floor_area(institution, start, end, building),
        energy_users=mean_energy_users(institution, start, end) if building is None else None,
        segment_lines=lambda s, e: period_energy(store, ledger, institution, profile, start=s,
                                                 end=e, building=building).energy_by_type)


class CarbonMonth(_View):
    month: str  # YYYY-MM
    t_co2: float | None  # None ("—"): no data in the month
    kg_co2_per_m2: float | None
    complete: bool


class CarbonYear(_View):
    """The year to date and each month of it (months after `as_of` are absent)."""

    year: int
    as_of: datetime
    ytd: CarbonFigures
    months: list[CarbonMonth]


def carbon_year(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                profile: CoefficientProfile, *, year: int, now: float) -> CarbonYear:
    tz = institution.institution.tz
    year_p = Period.year(year, tz)
    until = min(year_p.end, max(year_p.start, now))
    factors = EmissionFactors.for_institution(institution)
    months = []
    for mp in year_p.until(until).month_periods():
        c = period_carbon(store, ledger, institution, profile, start=mp.start, end=mp.end,
                          factors=factors)
        months.append(CarbonMonth(month=f"{mp.first_day:%Y-%m}", t_co2=c.t_co2,
                                  kg_co2_per_m2=c.kg_co2_per_m2, complete=c.complete))
    return CarbonYear(year=year, as_of=datetime.fromtimestamp(until, tz),
                      ytd=period_carbon(store, ledger, institution, profile,
                                        start=year_p.start, end=until, factors=factors),
                      months=months)


class CarbonCard(_View):
    """The dashboard's CO₂ card: the month and the year to date."""

    month: CarbonFigures
    ytd: CarbonFigures


def report_carbon(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                  profile: CoefficientProfile, report: ComplianceReport,
                  factors: EmissionFactors | None = None) -> CarbonFigures:
    """CO₂ of a compliance report's year to date from its own energy lines and coverage
    (the quantities `period_energy` reads for the same window), so a caller that has the
    report does not read the year again; cut and re-read only where a factor changes."""
    start = report.period_start.timestamp()
    end = max(start, min(report.as_of.timestamp(), report.period_end.timestamp()))
    if report.coverage is None:  # a report of an empty window: read it the usual way
        return period_carbon(store, ledger, institution, profile, start=start, end=end,
                             factors=factors)
    return carbon_figures(
        factors or EmissionFactors.for_institution(institution), profile, start=start,
        end=end, lines=report.energy_by_type, coverage=report.coverage,
        floor_area_m2=mean_floor_area(institution, start, end),
        energy_users=mean_energy_users(institution, start, end),
        segment_lines=lambda s, e: period_energy(store, ledger, institution, profile,
                                                 start=s, end=e).energy_by_type)


def carbon_card(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                profile: CoefficientProfile, *, now: float, month_start: float,
                month_energy: PeriodEnergy | None = None,
                year_report: ComplianceReport | None = None) -> CarbonCard:
    """CO₂ of the month to `now` (its energy as the page read it) and of the year to `now`
    (from the page's compliance report when given: `report_carbon`)."""
    tz = institution.institution.tz
    factors = EmissionFactors.for_institution(institution)
    end = max(month_start, now)
    year_p = Period.year(datetime.fromtimestamp(month_start, tz).year, tz)
    ytd = (report_carbon(store, ledger, institution, profile, year_report, factors)
           if year_report is not None else
           period_carbon(store, ledger, institution, profile, start=year_p.start,
                         end=min(year_p.end, end), factors=factors))
    return CarbonCard(
        month=period_carbon(store, ledger, institution, profile, start=month_start, end=end,
                            energy=month_energy, factors=factors), ytd=ytd)
