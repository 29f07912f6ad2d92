export default function (eleventyConfig) {
  eleventyConfig.addFilter("readableDate", (date) =>
    date.toLocaleDateString("en-GB", { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" }),
  );

  return {
    dir: {
      input: "src",
      output: "_site",
    },
    markdownTemplateEngine: "njk",
  };
}
