// A form of chosen fields from an options table (core/util/options.h): one row per field, an
// editor by type (spin box, check box, choice), its range, label and default taken from the
// table, so the studio's defaults are the CLI's and the run record's. args() gives the
// command-line options for the values shown (rows that are disabled are left out).
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLineEdit>
#include <QSpinBox>
#include <QStringList>
#include <QWidget>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "util/options.h"

namespace lincat::studio {

class OptionForm {
  public:
    // Rows for the fields named by `keys`, in that order.
    template <class C>
    OptionForm(QFormLayout* layout, const FieldTable<C>& table, const std::vector<std::string>& keys) {
        const C defaults{};
        for (const std::string& key : keys) {
            const Field<C>& f = field_of(table, key);
            const json value = f.get(defaults);
            Row row{key, f.cli, nullptr};
            QString label = QString::fromStdString(f.help);
            if (!label.isEmpty()) label[0] = label[0].toUpper();
            if (f.type == FieldType::Int) {
                auto* s = new QSpinBox;
                s->setRange(int(std::max(f.lo + (f.lo_open ? 1 : 0), -1e9)), int(std::min(f.hi, 1e9)));
                s->setValue(int(value.get<int64_t>()));
                row.editor = s;
            } else if (f.type == FieldType::Double) {
                auto* s = new QDoubleSpinBox;
                s->setDecimals(6);
                s->setRange(std::isfinite(f.lo) ? f.lo : -1e9, std::isfinite(f.hi) ? f.hi : 1e9);
                s->setSingleStep(std::max(1e-6, std::abs(value.get<double>()) / 10));
                s->setValue(value.get<double>());
                row.editor = s;
            } else if (f.type == FieldType::Bool) {
                auto* b = new QCheckBox;
                b->setChecked(value.get<bool>());
                row.editor = b;
            } else if (f.type == FieldType::Text && !f.choices.empty()) {
                auto* c = new QComboBox;
                for (auto& choice : f.choices) c->addItem(QString::fromStdString(choice));
                c->setCurrentText(QString::fromStdString(value.get<std::string>()));
                row.editor = c;
            } else if (f.type == FieldType::IntList || f.type == FieldType::TextList) {
                auto* e = new QLineEdit;  // comma-separated, as on the command line
                QStringList items;
                for (auto& v : value)
                    items << (v.is_string() ? QString::fromStdString(v.get<std::string>())
                                            : QString::number(v.get<int64_t>()));
                e->setText(items.join(","));
                e->setPlaceholderText(f.type == FieldType::IntList ? "e.g. 0,1,2 (empty: all)" : "comma-separated");
                row.editor = e;
            } else {
                continue;  // free text stays on the command line
            }
            row.editor->setObjectName(QString::fromStdString("option_" + key));
            row.editor->setToolTip(QString::fromStdString("--" + f.cli));
            layout->addRow(label, row.editor);
            rows_.push_back(row);
        }
    }

    QStringList args() const {
        QStringList out;
        for (const Row& r : rows_) {
            if (!r.editor->isEnabled()) continue;  // a row the form turned off is the command's default
            const QString name = QString::fromStdString("--" + r.cli);
            if (auto* s = qobject_cast<QSpinBox*>(r.editor)) out << name << QString::number(s->value());
            if (auto* s = qobject_cast<QDoubleSpinBox*>(r.editor)) out << name << QString::number(s->value(), 'g', 10);
            if (auto* c = qobject_cast<QComboBox*>(r.editor)) out << name << c->currentText();
            if (auto* b = qobject_cast<QCheckBox*>(r.editor); b && b->isChecked()) out << name;
            if (auto* e = qobject_cast<QLineEdit*>(r.editor); e && !e->text().trimmed().isEmpty())
                out << name << e->text().remove(' ');
        }
        return out;
    }

    // The editor of a field (tests, and widgets that tie to one value).
    QWidget* editor(const std::string& key) const {
        for (const Row& r : rows_)
            if (r.key == key) return r.editor;
        return nullptr;
    }

  private:
    struct Row {
        std::string key, cli;
        QWidget* editor;
    };
    std::vector<Row> rows_;
};

}  // namespace lincat::studio
