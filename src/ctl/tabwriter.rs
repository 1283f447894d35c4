//! Go's `text/tabwriter` (no flags): ctr prints every table and urfave/cli every help page
//! through it, so its column rule is what makes our output byte-identical.
//!
//! The rule: a line is cells separated by tabs; the text after a line's last tab is not a
//! cell of any column. Column `i` of a run of consecutive lines that all have a cell `i`
//! is one block, as wide as its widest cell plus `padding` (at least `minwidth`); a line
//! with fewer cells ends the blocks it does not reach. Cells are padded with `padchar`.
//! Widths count chars, as Go counts runes.

/// A buffer formatted as Go's `tabwriter.NewWriter(w, minwidth, tabwidth, padding, padchar, 0)`
/// formats on Flush (`tabwidth` only matters for a tab padchar, which ctr never uses).
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    padchar: char,
    text: String,
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize, padchar: char) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            padchar,
            text: String::new(),
        }
    }

    /// ctr's tables: `tabwriter.NewWriter(os.Stdout, 1, 8, 1, ' ', 0)`.
    pub fn table() -> TabWriter {
        TabWriter::new(1, 1, ' ')
    }

    /// urfave/cli's help pages: `tabwriter.NewWriter(out, 1, 8, 2, ' ', 0)`.
    pub fn help() -> TabWriter {
        TabWriter::new(1, 2, ' ')
    }

    /// Append text (tabs separate cells, newlines end lines).
    pub fn write(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Append one line: `cells` joined by tabs, then a newline.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.text.push('\t');
            }
            self.text.push_str(c.as_ref());
        }
        self.text.push('\n');
    }

    /// The formatted text.
    pub fn finish(self) -> String {
        let mut lines: Vec<Vec<&str>> = self
            .text
            .split('\n')
            .map(|l| l.split('\t').collect())
            .collect();
        // split gives a last empty "line" after a final newline: it is no line at all.
        let ends_with_newline = self.text.ends_with('\n');
        if ends_with_newline {
            lines.pop();
        }
        let mut out = String::with_capacity(self.text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths, &mut out);
        if !ends_with_newline && out.ends_with('\n') {
            out.pop();
        }
        out
    }

    /// Go's `format`: find the blocks of column `widths.len()` in `lines[line0..line1]`,
    /// recurse into each for the next column, write the lines that have no such column.
    fn format(
        &self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<&str>],
        line0: usize,
        line1: usize,
        widths: &[usize],
        out: &mut String,
    ) {
        for line in &lines[line0..line1] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() {
                    for _ in cell.chars().count()..widths[j] {
                        out.push(self.padchar);
                    }
                }
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_go_aligns_them() {
        let mut t = TabWriter::table();
        t.row(&["REF", "TYPE", "DIGEST"]);
        t.row(&[
            "docker.io/library/busybox:latest",
            "application/x",
            "sha256:1",
        ]);
        assert_eq!(
            t.finish(),
            "REF                              TYPE          DIGEST\n\
             docker.io/library/busybox:latest application/x sha256:1\n"
        );
    }

    #[test]
    fn a_line_without_the_column_ends_its_block() {
        let mut t = TabWriter::help();
        t.write("A:\n   x\tone\n   longer\ttwo\n\nB:\n   y\tthree\n");
        assert_eq!(
            t.finish(),
            "A:\n   x       one\n   longer  two\n\nB:\n   y  three\n"
        );
    }

    #[test]
    fn trailing_tab_makes_an_empty_last_cell() {
        let mut t = TabWriter::table();
        t.write("a\tb\t\nccc\td\t\n");
        assert_eq!(t.finish(), "a   b \nccc d \n");
    }
}
