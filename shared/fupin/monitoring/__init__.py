"""Preventing return to poverty (防返贫): monitoring, early warning, departmental screening, risk
elimination and poverty-prevention insurance."""
