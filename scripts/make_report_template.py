"""Rebuild templates/documents/laporan-monev.xlsx (the monev report's layout).

Edit the headings here, or open the workbook in Excel and edit it there;
bot/report.py only appends rows under row 1 of each sheet and fills column B
of the summary from row 3.
"""

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

OUT = Path(__file__).resolve().parent.parent / "templates" / "documents" / "laporan-monev.xlsx"
SUMMARY = [
    "Kantor",
    "SOP",
    "Kegiatan",
    "Status",
    "Dimulai",
    "Selesai",
    "Waktu standar total (menit kerja)",
    "Waktu kerja terpakai (menit)",
    "Langkah terlambat",
    "Berkas tercatat",
    "Rantai log peristiwa",
    "Versi definisi SOP",
]
SHEETS = {
    "Langkah": [
        ("No", 5),
        ("Uraian prosedur", 60),
        ("Pelaksana", 30),
        ("Putaran", 8),
        ("Status", 10),
        ("Dibuka", 18),
        ("Batas waktu", 18),
        ("Selesai", 18),
        ("Oleh", 20),
        ("Waktu standar (menit)", 12),
        ("Waktu kerja terpakai (menit)", 14),
        ("Terlambat (menit)", 12),
        ("Hasil", 12),
        ("Catatan", 40),
    ],
    "Berkas": [
        ("No", 5),
        ("Langkah", 8),
        ("Unit", 40),
        ("Nama berkas", 40),
        ("Versi", 6),
        ("Jenis", 10),
        ("Ukuran (byte)", 12),
        ("SHA-256", 66),
        ("Pengirim", 20),
        ("Diterima", 18),
        ("Status pemeriksaan", 14),
        ("Catatan pemeriksaan", 40),
    ],
    "Peristiwa": [
        ("No", 6),
        ("Waktu", 18),
        ("Peristiwa", 20),
        ("Pelaku", 20),
        ("Rincian", 80),
        ("Hash", 66),
    ],
}


def main() -> None:
    book = Workbook()
    bold = Font(bold=True)
    summary = book.active
    summary.title = "Ringkasan"
    summary["A1"] = "LAPORAN MONITORING DAN EVALUASI PELAKSANAAN SOP"
    summary["A1"].font = Font(bold=True, size=13)
    for row, label in enumerate(SUMMARY, start=3):
        summary.cell(row=row, column=1, value=label).font = bold
    summary.column_dimensions["A"].width = 34
    summary.column_dimensions["B"].width = 60
    for name, columns in SHEETS.items():
        sheet = book.create_sheet(name)
        for col, (header, width) in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=col, value=header)
            cell.font = bold
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            sheet.column_dimensions[cell.column_letter].width = width
        sheet.freeze_panes = "A2"
    book.save(OUT)
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
